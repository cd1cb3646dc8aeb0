// Helpers for the coordinator tests: child processes that are killed when the test ends (even
// when it fails), a real `kiln coordinator` process on a loopback port, an in-process
// coordinator, token files, an authenticated client, HTTP GET, openssl-made certificates, and
// a capture of the "coord" log lines.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/server.h"

namespace kiln::test {

namespace pb = ::kiln::coord::v1;

// A child process; its stdout and stderr go to `log_path`. The destructor SIGKILLs and reaps it.
class Process {
 public:
  Process(std::vector<std::string> argv, const std::string& log_path,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig);
  // Waits up to `timeout_s` for the exit; returns the exit code, 128 + signal, or -1 on timeout.
  int wait(double timeout_s);
  bool running();
  std::string output() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int status_ = -1;
};

// `kiln coordinator` as a child process on 127.0.0.1, with /metrics on a free port.
class CoordinatorProcess {
 public:
  // port 0: a free port (then restarts reuse the port it got).
  CoordinatorProcess(const std::string& state_dir, const std::string& token_file, int port = 0,
                     const std::string& log_path = "");
  void kill9();
  void terminate();  // SIGTERM and wait for a clean exit
  // Starts again on the same port and state folder.
  void restart();
  int port() const { return port_; }
  int http_port() const { return http_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const;

 private:
  void start();
  std::string state_dir_, token_file_, log_path_, ready_path_;
  int port_ = 0, http_port_ = 0;
  std::unique_ptr<Process> process_;
};

// Writes `content` to `path` with mode 0600.
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

// A stub plus the token, for direct calls.
struct TestClient {
  std::unique_ptr<pb::Coordinator::Stub> stub;
  std::string token;
  explicit TestClient(const coord::ClientOptions& o);
  TestClient(const std::string& address, const std::string& token);
  // A context with the token (or, with `token` = "", none) and a 10 s deadline.
  std::unique_ptr<grpc::ClientContext> ctx(const std::string* token = nullptr) const;
};

// GET http://127.0.0.1:port/path: the status code, and the body in `*body`.
int http_get(int port, const std::string& path, std::string* body);

// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by
// the CA, made with openssl in `dir`: ca.pem, server.pem, server.key, client.pem, client.key.
void make_certificates(const std::string& dir);

// Lines logged by the "coord" subsystem in this process since the last clear.
std::vector<std::string> coord_log_lines();
void clear_coord_log();
// True when some captured line contains every one of `parts`.
bool coord_logged(const std::vector<std::string>& parts);

// Register request of rank `rank` of `world` in job `job`.
pb::RegisterRequest register_request(const std::string& job, int rank, int world,
                                     const std::string& root = "");

}  // namespace kiln::test
