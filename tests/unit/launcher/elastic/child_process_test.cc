// Child processes: output lines, exit descriptions, a program that cannot start, and the
// session sweep that finds the processes a child left behind.
#include "launcher/elastic/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <mutex>

#include "test_util.h"

namespace kiln::elastic {
namespace {

using test::contains;

TEST(ChildProcess, LinesExitCodesAndSignals) {
  std::mutex mu;
  std::vector<std::string> out, err;
  {
    ChildProcess p(ChildOptions{{"/bin/sh", "-c", "echo one; echo two >&2; printf three; exit 3"},
                                {},
                                [&](const std::string& line, bool is_stderr) {
                                  std::lock_guard<std::mutex> lock(mu);
                                  (is_stderr ? err : out).push_back(line);
                                },
                                "",
                                0});
    ASSERT_TRUE(p.wait_for(30));
    EXPECT_EQ(p.exit_code(), 3);
    EXPECT_EQ(p.describe_exit(), "exit status 3");
  }  // the readers are joined: every line has arrived
  EXPECT_EQ(out, (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(err, (std::vector<std::string>{"two"}));

  ChildProcess kept(ChildOptions{{"/bin/sh", "-c", "echo hello; kill -9 $$"}, {}, nullptr, "", 0});
  ASSERT_TRUE(kept.wait_for(30));
  EXPECT_EQ(kept.exit_code(), 128 + SIGKILL);
  EXPECT_TRUE(contains(kept.describe_exit(), "signal 9"));
  EXPECT_EQ(kept.output(), "hello\n");

  // mpirun exits 137 when a rank was killed: an exit status, not a signal of its own.
  ChildProcess code(ChildOptions{{"/bin/sh", "-c", "exit 137"}, {}, nullptr, "", 0});
  ASSERT_TRUE(code.wait_for(30));
  EXPECT_EQ(code.describe_exit(), "exit status 137");

  ChildProcess env(ChildOptions{{"/bin/sh", "-c", "echo $KILN_X"}, {"KILN_X=42"}, nullptr, "", 0});
  ASSERT_TRUE(env.wait_for(30));
  EXPECT_EQ(env.output(), "42\n");
}

TEST(ChildProcess, AProgramThatCannotStartIsAnError) {
  EXPECT_TRUE(contains(test::error_message([] {
                         ChildProcess p(ChildOptions{{"/nonexistent/kiln-x"}, {}, nullptr, "", 0});
                       }),
                       "cannot run '/nonexistent/kiln-x': No such file or directory"));
}

TEST(ChildProcess, SessionSweepKillsWhatTheChildLeft) {
  // The shell starts two sleepers and exits: orphaned, they stay in its session (as ranks stay
  // in mpirun's, each in a process group of its own).
  ChildProcess p(ChildOptions{
      {"/bin/sh", "-c", "sleep 300 & sleep 300 & echo started"}, {}, nullptr, "", 0});
  ASSERT_TRUE(p.wait_for(30));
  EXPECT_EQ(p.exit_code(), 0);
  const std::vector<pid_t> left = p.session_members();
  ASSERT_EQ(left.size(), 2u);
  for (pid_t pid : left) EXPECT_EQ(::kill(pid, 0), 0);
  EXPECT_EQ(p.kill_session(), 2);
  EXPECT_TRUE(p.session_members().empty());
  EXPECT_EQ(p.output(), "started\n");  // the pipes closed with the sleepers
}

}  // namespace
}  // namespace kiln::elastic
