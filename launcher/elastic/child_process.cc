// Child processes in their own session, with their output read on threads.
#include "launcher/elastic/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "core/error.h"

extern char** environ;

namespace kiln::elastic {

namespace {

constexpr size_t kKeep = 64 * 1024;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Field 6 of /proc/PID/stat (the session), or -1.
pid_t session_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  const size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return -1;
  char state = 0;
  int ppid = 0, pgrp = 0, session = -1;
  if (std::sscanf(stat.c_str() + paren + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4) {
    return -1;
  }
  return state == 'Z' ? -1 : session;  // a zombie has already let go of everything
}

}  // namespace

std::vector<pid_t> processes_in_session(pid_t sid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || pid <= 0) continue;
    if (session_of(static_cast<pid_t>(pid)) == sid) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

ChildProcess::ChildProcess(ChildOptions o) : on_line_(std::move(o.on_line)) {
  KILN_CHECK(!o.argv.empty(), "no command to run");
  std::vector<char*> argv, envp;
  for (std::string& a : o.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : o.env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char** env = o.env.empty() ? environ : envp.data();

  const bool capture = o.output_file.empty();
  int out[2] = {-1, -1}, err[2] = {-1, -1}, exec_err[2] = {-1, -1};
  int file = -1;
  if (capture) {
    KILN_SYS_CHECK(::pipe2(out, O_CLOEXEC), "pipe");
    KILN_SYS_CHECK(::pipe2(err, O_CLOEXEC), "pipe");
  } else {
    file = ::open(o.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    KILN_SYS_CHECK(file, "cannot open {} for the output of {}", o.output_file, o.argv[0]);
  }
  KILN_SYS_CHECK(::pipe2(exec_err, O_CLOEXEC), "pipe");
  const int death_signal = o.parent_death_signal;

  pid_ = ::fork();
  KILN_SYS_CHECK(pid_, "cannot fork to run {}", o.argv[0]);
  if (pid_ == 0) {
    // Only async-signal-safe calls from here to exec.
    ::setsid();
    if (death_signal) ::prctl(PR_SET_PDEATHSIG, death_signal);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGHUP, SIGUSR1}) {
      ::sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int to_out = capture ? out[1] : file, to_err = capture ? err[1] : file;
    ::dup2(to_out, STDOUT_FILENO);
    ::dup2(to_err, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execvpe(argv[0], argv.data(), env);
    const int e = errno;
    (void)!::write(exec_err[1], &e, sizeof(e));
    ::_exit(127);
  }
  close_fd(exec_err[1]);
  int child_errno = 0;
  const ssize_t got = ::read(exec_err[0], &child_errno, sizeof(child_errno));
  close_fd(exec_err[0]);
  if (capture) {
    close_fd(out[1]);
    close_fd(err[1]);
  } else {
    close_fd(file);
  }
  if (got == static_cast<ssize_t>(sizeof(child_errno))) {
    ::waitpid(pid_, nullptr, 0);
    status_ = 127;
    close_fd(out[0]);
    close_fd(err[0]);
    KILN_FAIL("cannot run '{}': {}", o.argv[0], std::strerror(child_errno));
  }
  if (capture) {
    readers_.emplace_back([this, fd = out[0]] { read_loop(fd, false); });
    readers_.emplace_back([this, fd = err[0]] { read_loop(fd, true); });
  }
}

ChildProcess::~ChildProcess() {
  // Orphans of the session may still hold the pipes: they go too, then the readers see the end.
  kill_session();
  wait_for(10);
  for (std::thread& t : readers_) {
    if (t.joinable()) t.join();
  }
}

void ChildProcess::read_loop(int fd, bool is_stderr) {
  std::string pending;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      const std::string line = pending.substr(start, nl - start);
      start = nl + 1;
      if (on_line_) {
        on_line_(line, is_stderr);
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        kept_ += line + "\n";
        if (kept_.size() > kKeep) kept_.erase(0, kept_.size() - kKeep);
      }
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) {
    if (on_line_) {
      on_line_(pending, is_stderr);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      kept_ += pending + "\n";
    }
  }
  ::close(fd);
}

bool ChildProcess::poll() {
  if (status_ >= 0) return true;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r != pid_) return false;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  signaled_ = WIFSIGNALED(st);
  return true;
}

bool ChildProcess::wait_for(double seconds) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    ::usleep(10000);
  }
  return true;
}

std::string ChildProcess::describe_exit() const {
  if (status_ < 0) return "running";
  if (signaled_) {
    const char* name = ::strsignal(status_ - 128);
    return fmt::format("signal {} ({})", status_ - 128, name ? name : "?");
  }
  return fmt::format("exit status {}", status_);
}

void ChildProcess::signal_group(int sig) {
  if (!poll()) ::kill(-pid_, sig);
}

std::vector<pid_t> ChildProcess::session_members() const {
  std::vector<pid_t> out;
  for (pid_t p : processes_in_session(pid_)) {
    if (p != pid_) out.push_back(p);
  }
  return out;
}

int ChildProcess::kill_session() {
  int killed = 0;
  for (int round = 0; round < 100; ++round) {
    std::vector<pid_t> members = processes_in_session(pid_);
    if (!poll()) members.push_back(pid_);
    if (members.empty()) break;
    for (pid_t p : members) {
      if (::kill(p, SIGKILL) == 0 && round == 0) ++killed;
    }
    poll();
    ::usleep(10000);
  }
  return killed;
}

std::string ChildProcess::output() {
  if (exited()) {
    for (std::thread& t : readers_) {
      if (t.joinable()) t.join();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  return kept_;
}

}  // namespace kiln::elastic
