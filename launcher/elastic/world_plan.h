// Choosing a generation's world size and where its ranks run: the largest world within
// [min_np, max_np] that the hosts' slots hold and that splits the global batch exactly
// (global_batch % (micro_batch x world) == 0, so gradient accumulation keeps the math of
// DESIGN decision 6), placed by filling each host's slots in order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/elastic/hosts.h"

namespace kiln::elastic {

struct BatchShape {
  int64_t global_batch = 1;
  int64_t micro_batch = 1;
  bool splits_over(int world) const {
    return world > 0 && global_batch % (micro_batch * world) == 0;
  }
};

struct Placement {
  int world = 0;
  std::vector<HostSlots> hosts;  // ranks per host, in rank order (slots = ranks placed there)
  // The host of rank `rank` (ranks fill the hosts in order).
  const std::string& host_of_rank(int rank) const;
  // "a:2,b:2" for mpirun --host.
  std::string mpirun_hosts() const;
  bool operator==(const Placement& o) const { return world == o.world && hosts == o.hosts; }
};

// The world sizes in [lo, hi] that split the batch exactly, ascending.
std::vector<int> exact_world_sizes(const BatchShape& b, int lo, int hi);

// The largest exact world size in [min_np, min(max_np, slots)] and its placement on `hosts`
// (in their order); nullopt when there is none.
std::optional<Placement> plan_world(const std::vector<HostSlots>& hosts, int min_np, int max_np,
                                    const BatchShape& b);

// Start-up checks with errors that say what to change: min_np <= max_np, min_np within the
// hosts' slots, and some world size in the range that splits the global batch. `batch_where`
// names the config key and its origin for the message.
void check_world_range(const std::vector<HostSlots>& hosts, int min_np, int max_np,
                       const BatchShape& b, const std::string& batch_where);

}  // namespace kiln::elastic
