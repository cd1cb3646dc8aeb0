// The supervisor's hosts: a hostfile re-read when edited, probes through the rsh agent (here a
// shell line that fails for hosts named down*), blacklisting until the cool-down ends, the
// fallback to blacklisted hosts that answer, the discovery script, and the start-up errors.
#include "launcher/elastic/host_pool.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace kiln::elastic {
namespace {

using test::contains;
using test::error_message;

// `AGENT HOST true` runs `sh -c SCRIPT HOST true`: $0 is the host.
const std::vector<std::string> kAgent = {"/bin/sh", "-c",
                                         "case \"$0\" in down*) echo \"no route to $0\" >&2; "
                                         "exit 255;; esac; exec \"$1\""};

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Updates until no probe is in flight (at most ~10 s); returns whether anything changed.
bool settle(HostPool& pool, double now) {
  bool changed = false;
  for (int i = 0; i < 1000; ++i) {
    changed |= pool.update(now);
    if (!pool.busy()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return changed;
}

std::string names(const std::vector<HostSlots>& hosts) { return describe_hosts(hosts); }

TEST(HostPool, BlacklistCoolDownProbesAndHostfileEdits) {
  test::TempDir dir;
  const std::string hostfile = dir.path() + "/hosts";
  write(hostfile, "a slots=2\nb slots=2\n");
  HostPoolOptions o;
  o.hostfile = hostfile;
  o.rsh_agent = kAgent;
  o.cooldown_s = 30;
  o.probe_interval_s = 5;
  HostPool pool(o);
  pool.load(0);
  pool.probe_all(0);
  EXPECT_EQ(names(pool.usable(0)), "a:2, b:2");

  // b fails: out for the cool-down, though it answers its probe.
  pool.blacklist("b", 10, "rank 2 died");
  settle(pool, 10);
  EXPECT_TRUE(pool.is_blacklisted("b", 39));
  EXPECT_EQ(names(pool.usable(11)), "a:2");
  EXPECT_EQ(names(pool.blacklisted_but_reachable(11)), "b:2");
  EXPECT_EQ(names(pool.usable(40)), "a:2, b:2");  // cool-down over
  EXPECT_TRUE(pool.blacklisted_but_reachable(40).empty());

  // A new host that does not answer is listed but not usable, and probed again later.
  write(hostfile, "a slots=2\nb slots=2\ndown-c slots=4\n");
  settle(pool, 41);
  EXPECT_EQ(names(pool.listed()), "a:2, b:2, down-c:4");
  EXPECT_EQ(names(pool.usable(41)), "a:2, b:2");

  // A malformed edit is ignored (the previous list stays); removing a host takes effect.
  write(hostfile, "a slots=two\n");
  settle(pool, 42);
  EXPECT_EQ(names(pool.listed()), "a:2, b:2, down-c:4");
  write(hostfile, "a slots=2\n");
  settle(pool, 43);
  EXPECT_EQ(names(pool.usable(43)), "a:2");
}

TEST(HostPool, UnreachableHostsAreAStartUpError) {
  test::TempDir dir;
  const std::string hostfile = dir.path() + "/hosts";
  write(hostfile, "a slots=2\ndown-b slots=2\n");
  HostPoolOptions o;
  o.hostfile = hostfile;
  o.rsh_agent = kAgent;
  HostPool pool(o);
  pool.load(0);
  const std::string e = error_message([&] { pool.probe_all(0); });
  EXPECT_TRUE(contains(e, "unreachable host(s): down-b (exit status 255: no route to down-b)"));
  EXPECT_TRUE(contains(e, "remove it from the hostfile " + hostfile));
}

TEST(HostPool, DiscoveryScriptAndLocalMachine) {
  test::TempDir dir;
  const std::string list = dir.path() + "/list";
  write(list, "a:1\n");
  HostPoolOptions o;
  o.discover_script = "cat " + list;
  o.discover_interval_s = 1;
  o.rsh_agent = kAgent;
  HostPool pool(o);
  pool.load(0);
  EXPECT_EQ(names(pool.listed()), "a:1");
  write(list, "a:1\nb:3\n");
  settle(pool, 2);  // starts the script
  settle(pool, 2.1);  // reads its output, probes b
  settle(pool, 2.2);
  EXPECT_EQ(names(pool.usable(3)), "a:1, b:3");

  HostPoolOptions bad;
  bad.discover_script = "echo oops >&2; exit 4";
  HostPool failing(bad);
  EXPECT_TRUE(contains(error_message([&] { failing.load(0); }),
                       "--discover-hosts 'echo oops >&2; exit 4' failed (exit status 4): oops"));

  HostPoolOptions local;
  local.local_slots = 3;
  HostPool machine(local);
  machine.load(0);
  machine.probe_all(0);
  EXPECT_EQ(names(machine.usable(0)), "localhost:3");
  // The local machine answers by definition: blacklisted, it is the fallback at once.
  machine.blacklist("localhost", 1, "rank 0 died");
  EXPECT_TRUE(machine.usable(2).empty());
  EXPECT_EQ(names(machine.blacklisted_but_reachable(2)), "localhost:3");
}

}  // namespace
}  // namespace kiln::elastic
