// Hostfile and discovery-output parsing.
#include "launcher/elastic/hosts.h"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace kiln::elastic {

namespace {

constexpr const char* kForm = "a line is 'HOST slots=N' or 'HOST:N'";

// A positive count, or -1 when `s` is not one.
int parse_count(const std::string& s) {
  if (s.empty() || s.size() > 6) return -1;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  }
  const int n = std::stoi(s);
  return n > 0 ? n : -1;
}

bool valid_host_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<HostSlots> parse_hosts(const std::string& text, const std::string& source) {
  std::vector<HostSlots> hosts;
  std::set<std::string> seen;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string first;
    if (!(fields >> first)) continue;
    HostSlots h;
    h.name = first;
    int max_slots = -1;
    bool slots_given = false;
    // HOST:N (an IPv6 address has several colons and takes the hostfile form instead).
    if (const size_t colon = first.rfind(':');
        colon != std::string::npos && first.find(':') == colon) {
      h.name = first.substr(0, colon);
      h.slots = parse_count(first.substr(colon + 1));
      KILN_CHECK(h.slots > 0, "{} line {}: '{}': the slot count after ':' must be a positive "
                 "number ({})", source, number, first, kForm);
      slots_given = true;
    }
    KILN_CHECK(valid_host_name(h.name),
               "{} line {}: '{}' is not a host name or address ({})", source, number, h.name,
               kForm);
    std::string field;
    while (fields >> field) {
      const size_t eq = field.find('=');
      const std::string key = field.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : field.substr(eq + 1);
      if (key == "slots" || key == "max_slots" || key == "max-slots") {
        const int n = parse_count(value);
        KILN_CHECK(n > 0, "{} line {}: '{}': {} must be a positive number ({})", source, number,
                   field, key, kForm);
        if (key == "slots") {
          KILN_CHECK(!slots_given, "{} line {}: the slots of '{}' are given twice", source,
                     number, h.name);
          h.slots = n;
          slots_given = true;
        } else {
          max_slots = n;
        }
      } else {
        KILN_FAIL("{} line {}: unknown field '{}' ({}; max_slots=M is accepted too)", source,
                  number, field, kForm);
      }
    }
    KILN_CHECK(max_slots < 0 || max_slots >= h.slots,
               "{} line {}: max_slots={} is below slots={} for '{}'", source, number, max_slots,
               h.slots, h.name);
    KILN_CHECK(seen.insert(h.name).second,
               "{} line {}: host '{}' is listed twice; give it once with its total slots", source,
               number, h.name);
    hosts.push_back(std::move(h));
  }
  KILN_CHECK(!hosts.empty(), "{} names no host ({})", source, kForm);
  return hosts;
}

std::vector<HostSlots> read_hostfile(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "--hostfile {}: cannot read it: {}", path, errno_string());
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_hosts(ss.str(), "hostfile " + path);
}

bool is_local_host(const std::string& name) {
  if (name == "localhost" || name == "::1" || name.rfind("127.", 0) == 0) return true;
  char self[256] = {};
  if (::gethostname(self, sizeof(self) - 1) != 0) return false;
  const std::string me = self;
  // "node1" matches "node1.cluster.example" and the other way round.
  auto short_name = [](const std::string& s) { return s.substr(0, s.find('.')); };
  return name == me || (!name.empty() && short_name(name) == short_name(me) &&
                        std::isalpha(static_cast<unsigned char>(name[0])));
}

std::string describe_hosts(const std::vector<HostSlots>& hosts) {
  std::string out;
  for (const HostSlots& h : hosts) {
    out += fmt::format("{}{}:{}", out.empty() ? "" : ", ", h.name, h.slots);
  }
  return out.empty() ? "(none)" : out;
}

int total_slots(const std::vector<HostSlots>& hosts) {
  int n = 0;
  for (const HostSlots& h : hosts) n += h.slots;
  return n;
}

}  // namespace kiln::elastic
