// World size and rank placement for a generation.
#include "launcher/elastic/world_plan.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::elastic {

namespace {

std::string join(const std::vector<int>& v) {
  std::string out;
  for (int x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
  return out;
}

}  // namespace

const std::string& Placement::host_of_rank(int rank) const {
  int first = 0;
  for (const HostSlots& h : hosts) {
    if (rank < first + h.slots) return h.name;
    first += h.slots;
  }
  KILN_FAIL("rank {} is outside the world of {} ranks", rank, world);
}

std::string Placement::mpirun_hosts() const {
  std::string out;
  for (const HostSlots& h : hosts) out += fmt::format("{}{}:{}", out.empty() ? "" : ",", h.name,
                                                      h.slots);
  return out;
}

std::vector<int> exact_world_sizes(const BatchShape& b, int lo, int hi) {
  std::vector<int> out;
  for (int w = std::max(1, lo); w <= hi; ++w) {
    if (b.splits_over(w)) out.push_back(w);
  }
  return out;
}

std::optional<Placement> plan_world(const std::vector<HostSlots>& hosts, int min_np, int max_np,
                                    const BatchShape& b) {
  const std::vector<int> sizes =
      exact_world_sizes(b, min_np, std::min(max_np, total_slots(hosts)));
  if (sizes.empty()) return std::nullopt;
  Placement p;
  p.world = sizes.back();
  int left = p.world;
  for (const HostSlots& h : hosts) {
    if (left == 0) break;
    const int n = std::min(left, h.slots);
    p.hosts.push_back(HostSlots{h.name, n});
    left -= n;
  }
  return p;
}

void check_world_range(const std::vector<HostSlots>& hosts, int min_np, int max_np,
                       const BatchShape& b, const std::string& batch_where) {
  KILN_CHECK(min_np >= 1, "--min-np {} must be at least 1", min_np);
  KILN_CHECK(min_np <= max_np, "--min-np {} is above --max-np {}", min_np, max_np);
  const int slots = total_slots(hosts);
  KILN_CHECK(min_np <= slots,
             "--min-np {} is above the {} slot(s) the hosts offer ({}): add hosts or slots "
             "(a hostfile line 'HOST slots=N'), or lower --min-np / --np",
             min_np, slots, describe_hosts(hosts));
  const int hi = std::min(max_np, slots);
  if (!exact_world_sizes(b, min_np, hi).empty()) return;
  const std::vector<int> any = exact_world_sizes(b, 1, static_cast<int>(std::min<int64_t>(
                                                          b.global_batch / b.micro_batch, 4096)));
  KILN_FAIL("{} = {} with train.micro_batch = {} splits exactly over no world size in [{}, {}] "
            "(it must be a multiple of micro_batch x world); world sizes that work: {}. Change "
            "--min-np/--max-np, the hosts, or the batch sizes",
            batch_where, b.global_batch, b.micro_batch, min_np, hi,
            any.empty() ? "none" : join(any));
}

}  // namespace kiln::elastic
