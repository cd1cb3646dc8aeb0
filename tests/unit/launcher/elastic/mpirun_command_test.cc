// The generation's mpirun command and environment, and the reading of mpirun's failure report.
#include "launcher/elastic/mpirun_command.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace kiln::elastic {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(MpirunCommand, PlacesRanksForwardsKilnVariablesAndResumes) {
  RankCommand c;
  c.mpirun = "/usr/bin/mpirun";
  c.mpirun_args = {"--mca", "btl", "tcp,self"};
  c.rsh_agent = {"/x/agent", "-q"};
  c.kiln = "/opt/kiln";
  c.config = "/cfg/a.yaml";
  c.sets = {"train.steps=10", "coordinator.job=j"};
  Placement p;
  p.world = 3;
  p.hosts = {{"a", 2}, {"b", 1}};
  const std::vector<std::string> argv = mpirun_argv(c, p, 7, {"KILN_SET", "KILN_LOG_LEVEL"});
  const std::vector<std::string> want = {
      "/usr/bin/mpirun", "-np", "3", "--host", "a:2,b:1", "--mca", "odls_base_sigkill_timeout",
      "0", "--mca", "plm_rsh_agent",
      "/x/agent -q", "--mca", "btl", "tcp,self", "-x", "KILN_SET", "-x", "KILN_LOG_LEVEL",
      "/opt/kiln", "train", "--config", "/cfg/a.yaml", "--set", "train.steps=10", "--set",
      "coordinator.job=j", "--set", "coordinator.generation=7", "--resume", "auto"};
  EXPECT_EQ(argv, want);

  c.config.clear();  // the embedded default: no --config at all
  c.rsh_agent.clear();
  const std::vector<std::string> plain = mpirun_argv(c, p, 0, {});
  EXPECT_FALSE(has(plain, "--config"));
  EXPECT_FALSE(has(plain, "plm_rsh_agent"));
}

TEST(MpirunCommand, DebugHooksReachTheFirstGenerationOnly) {
  const std::vector<std::string> base = {"PATH=/bin", "KILN_SET=a=1", "KILN_DEBUG_HANG_AT_STEP=5",
                                         "KILN_DEBUG_STEP_SLEEP_MS=20", "OMPI_ALLOW_RUN_AS_ROOT=0",
                                         "HOME=/root"};
  std::vector<std::string> forwarded;
  std::vector<std::string> env = mpirun_env(base, true, false, &forwarded);
  EXPECT_TRUE(has(env, "KILN_DEBUG_HANG_AT_STEP=5"));
  EXPECT_EQ(forwarded, (std::vector<std::string>{"KILN_SET", "KILN_DEBUG_HANG_AT_STEP",
                                                 "KILN_DEBUG_STEP_SLEEP_MS"}));
  EXPECT_TRUE(has(env, "OMPI_ALLOW_RUN_AS_ROOT=0"));

  // Later generations: the hang is not met again; slow steps stay.
  env = mpirun_env(base, false, true, &forwarded);
  EXPECT_FALSE(has(env, "KILN_DEBUG_HANG_AT_STEP=5"));
  EXPECT_TRUE(has(env, "KILN_DEBUG_STEP_SLEEP_MS=20"));
  EXPECT_EQ(forwarded, (std::vector<std::string>{"KILN_SET", "KILN_DEBUG_STEP_SLEEP_MS"}));
  EXPECT_TRUE(has(env, "OMPI_ALLOW_RUN_AS_ROOT=1"));
  EXPECT_TRUE(has(env, "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"));
  EXPECT_FALSE(has(env, "OMPI_ALLOW_RUN_AS_ROOT=0"));
  EXPECT_TRUE(has(env, "HOME=/root"));
}

TEST(MpirunCommand, RanksAreUnboundUnlessTheUserBindsThem) {
  std::vector<std::string> forwarded;
  std::vector<std::string> env = mpirun_env({"PATH=/bin"}, false, false, &forwarded);
  EXPECT_TRUE(has(env, "OMPI_MCA_hwloc_base_binding_policy=none"));
  env = mpirun_env({"PATH=/bin", "OMPI_MCA_hwloc_base_binding_policy=core"}, false, false,
                   &forwarded);
  EXPECT_TRUE(has(env, "OMPI_MCA_hwloc_base_binding_policy=core"));
  EXPECT_FALSE(has(env, "OMPI_MCA_hwloc_base_binding_policy=none"));
}

TEST(MpirunCommand, ReadsWhichRankDiedOfWhichSignal) {
  // Open MPI 4.1's words.
  auto d = parse_rank_death(
      "mpirun noticed that process rank 3 with PID 0 on node 198.18.0.12 exited on signal 9 "
      "(Killed).");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->rank, 3);
  EXPECT_EQ(d->signal, 9);
  EXPECT_FALSE(parse_rank_death("  Exit code:    3"));
  EXPECT_TRUE(is_failure_report("  Exit code:    3"));
  EXPECT_TRUE(is_failure_report("Process name: [[1234,1],0]"));
  EXPECT_FALSE(is_failure_report("r0/2 I [train] step 10/100 | loss 1.0"));
}

}  // namespace
}  // namespace kiln::elastic
