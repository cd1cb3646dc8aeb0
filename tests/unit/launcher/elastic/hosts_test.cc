// Hostfile and discovery-output parsing: both line forms, comments, and each malformed input
// refused naming the source, the line and the offending text.
#include "launcher/elastic/hosts.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "test_util.h"

namespace kiln::elastic {
namespace {

using test::contains;
using test::error_message;

TEST(Hosts, ParsesBothFormsWithCommentsAndDefaults) {
  const auto hosts = parse_hosts(
      "# cluster\n"
      "198.18.0.11 slots=2\n"
      "\n"
      "node-b:4   # a discovery line\n"
      "node-c\n"
      "node-d slots=3 max_slots=6\n",
      "hostfile h");
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(hosts[0], (HostSlots{"198.18.0.11", 2}));
  EXPECT_EQ(hosts[1], (HostSlots{"node-b", 4}));
  EXPECT_EQ(hosts[2], (HostSlots{"node-c", 1}));
  EXPECT_EQ(hosts[3], (HostSlots{"node-d", 3}));
  EXPECT_EQ(total_slots(hosts), 10);
  EXPECT_EQ(describe_hosts(hosts), "198.18.0.11:2, node-b:4, node-c:1, node-d:3");
}

TEST(Hosts, MalformedLinesNameSourceLineAndText) {
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a slots=2\nb slots=x\n", "hostfile h"); }),
                       "hostfile h line 2: 'slots=x': slots must be a positive number"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a slots=0\n", "hostfile h"); }),
                       "hostfile h line 1: 'slots=0'"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a cpus=2\n", "hostfile h"); }),
                       "hostfile h line 1: unknown field 'cpus=2'"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a:two\n", "discovery"); }),
                       "discovery line 1: 'a:two': the slot count after ':' must be a positive"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a\nb\na slots=2\n", "hostfile h"); }),
                       "hostfile h line 3: host 'a' is listed twice"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a slots=4 max_slots=2\n", "hostfile h"); }),
                       "max_slots=2 is below slots=4"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("a slots=2 slots=3\n", "hostfile h"); }),
                       "the slots of 'a' are given twice"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("bad/host\n", "hostfile h"); }),
                       "'bad/host' is not a host name"));
  EXPECT_TRUE(contains(error_message([] { parse_hosts("# only a comment\n\n", "hostfile h"); }),
                       "hostfile h names no host"));
}

TEST(Hosts, ReadHostfileNamesTheFile) {
  test::TempDir dir;
  EXPECT_TRUE(contains(error_message([&] { read_hostfile(dir.path() + "/missing"); }),
                       "--hostfile " + dir.path() + "/missing: cannot read it"));
}

TEST(Hosts, LocalHosts) {
  EXPECT_TRUE(is_local_host("localhost"));
  EXPECT_TRUE(is_local_host("127.0.0.1"));
  EXPECT_TRUE(is_local_host("::1"));
  char self[256] = {};
  ASSERT_EQ(::gethostname(self, sizeof(self) - 1), 0);
  EXPECT_TRUE(is_local_host(self));
  EXPECT_FALSE(is_local_host("198.18.0.11"));
  EXPECT_FALSE(is_local_host(std::string(self) + "x"));
}

}  // namespace
}  // namespace kiln::elastic
