// The hosts a job may run on: parsing Open MPI-style hostfiles and the output of a discovery
// script into (name, slots) pairs, and telling the local machine apart from remote ones. Errors
// name the file (or script) and line, and show the form a line should have.
#pragma once

#include <string>
#include <vector>

namespace kiln::elastic {

struct HostSlots {
  std::string name;
  int slots = 1;  // ranks the host may run
  bool operator==(const HostSlots& o) const { return name == o.name && slots == o.slots; }
};

// One host per line, in either form: `HOST [slots=N] [max_slots=M]` (an Open MPI hostfile; no
// slots= means 1) or `HOST:N` (the form discovery scripts print). `#` starts a comment; blank
// lines are skipped. A host named twice, a non-positive or malformed count, or an unknown field
// is an error naming `source` and the line. An empty list is an error too.
std::vector<HostSlots> parse_hosts(const std::string& text, const std::string& source);

// Reads and parses a hostfile.
std::vector<HostSlots> read_hostfile(const std::string& path);

// localhost, 127.x.x.x, ::1, and this machine's own host name: mpirun starts ranks there
// without the rsh agent, and the supervisor never probes it.
bool is_local_host(const std::string& name);

// "a:2, b:2" for logs and errors.
std::string describe_hosts(const std::vector<HostSlots>& hosts);
int total_slots(const std::vector<HostSlots>& hosts);

}  // namespace kiln::elastic
