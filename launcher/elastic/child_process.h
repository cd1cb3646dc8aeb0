// A child process of the supervisor (mpirun, the coordinator, host probes, the discovery
// script). It starts in a session of its own: a terminal's Ctrl-C then reaches `kiln launch`
// only (which stops the job cleanly), and teardown can find every local process the child left
// behind (mpirun puts each rank in a process group of its own, but all stay in its session).
// Its output is read line by line on a thread and handed to a callback, or kept (a bounded
// tail), or sent to a file.
//
// Thread safety: one owning thread calls the methods; the callback runs on reader threads.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::elastic {

struct ChildOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // the whole environment as K=V (empty: this process's)
  // Each line of stdout (false) and stderr (true), without the newline. Null: lines are kept
  // (see output()) unless output_file is set.
  std::function<void(const std::string& line, bool is_stderr)> on_line;
  std::string output_file;  // stdout and stderr appended here (instead of on_line)
  int parent_death_signal = 0;  // sent to the child when this thread's process dies (0: none)
};

class ChildProcess {
 public:
  // Throws naming argv[0] when it cannot be started (not found, not executable).
  explicit ChildProcess(ChildOptions o);
  // SIGKILLs the session when the child still runs, reaps it, joins the readers.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Non-blocking: whether the child has exited (it is reaped then).
  bool poll();
  // Polls until it exits or `seconds` pass; whether it exited.
  bool wait_for(double seconds);
  bool exited() const { return status_ >= 0; }
  // Exit status, or 128 + signal; -1 while running.
  int exit_code() const { return status_; }
  // "exit status 3", "signal 9 (Killed)" (a process killed by the signal; an exit status of 137
  // stays "exit status 137").
  std::string describe_exit() const;
  // Sends `sig` to the child's process group (its own, being a session leader).
  void signal_group(int sig);
  // SIGKILL to every process still in the child's session, the child included; returns how many
  // there were. Repeats until none is left (a process may fork meanwhile), at most ~1 s.
  int kill_session();
  // Pids of the processes in the child's session, the child excluded.
  std::vector<pid_t> session_members() const;
  // The kept lines (when no on_line and no output_file), the last 64 KiB. Once the child has
  // exited, waits for the readers to see the end of the output (every writer gone) first.
  std::string output();

 private:
  void read_loop(int fd, bool is_stderr);

  pid_t pid_ = -1;
  int status_ = -1;
  bool signaled_ = false;  // ended by a signal (else exited with status_)
  std::function<void(const std::string&, bool)> on_line_;
  std::vector<std::thread> readers_;
  std::mutex mu_;
  std::string kept_;
};

// Processes in session `sid` (the session leader included when alive).
std::vector<pid_t> processes_in_session(pid_t sid);

}  // namespace kiln::elastic
