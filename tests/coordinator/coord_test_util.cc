// Helpers for the coordinator tests: processes, coordinators, clients, HTTP, certificates, logs.
#include "coord_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/log.h"
#include "test_util.h"

namespace kiln::test {

namespace {

using Clock = std::chrono::steady_clock;

// Keeps every formatted line of the loggers it is attached to, until clear().
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

std::shared_ptr<CaptureSink> capture_sink() {
  static std::shared_ptr<CaptureSink> sink = [] {
    auto s = std::make_shared<CaptureSink>();
    log::get("coord")->sinks().push_back(s);
    return s;
  }();
  return sink;
}

}  // namespace

Process::Process(std::vector<std::string> argv, const std::string& log_path,
                 const std::map<std::string, std::string>& env)
    : log_path_(log_path) {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Dies with the test, even when the test itself is killed (a ctest timeout).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(10);
  }
}

void Process::signal(int sig) {
  if (status_ < 0) ::kill(pid_, sig);
}

bool Process::running() {
  if (status_ >= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

int Process::wait(double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (running()) {
    if (Clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

std::string Process::output() const { return read_file(log_path_); }

CoordinatorProcess::CoordinatorProcess(const std::string& state_dir, const std::string& token_file,
                                       int port, const std::string& log_path)
    : state_dir_(state_dir),
      token_file_(token_file),
      log_path_(log_path.empty() ? state_dir + ".log" : log_path),
      ready_path_(state_dir + ".ready.json"),
      port_(port) {
  start();
}

void CoordinatorProcess::start() {
  std::filesystem::remove(ready_path_);
  process_ = std::make_unique<Process>(
      std::vector<std::string>{KILN_BINARY, "coordinator", "--listen",
                               "127.0.0.1:" + std::to_string(port_), "--state-dir", state_dir_,
                               "--http-port", "0", "--token-file", token_file_, "--ready-file",
                               ready_path_},
      log_path_);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(ready_path_)) {
    if (!process_->running() || Clock::now() > deadline) {
      throw std::runtime_error("the coordinator did not start; its log:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  nlohmann::json j = nlohmann::json::parse(read_file(ready_path_));
  port_ = j["port"].get<int>();
  http_port_ = j["http_port"].get<int>();
}

void CoordinatorProcess::kill9() {
  process_->signal(SIGKILL);
  process_->wait(10);
}

void CoordinatorProcess::terminate() {
  process_->signal(SIGTERM);
  process_->wait(30);
}

void CoordinatorProcess::restart() {
  kill9();
  start();
}

std::string CoordinatorProcess::log() const { return read_file(log_path_); }

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TestClient::TestClient(const coord::ClientOptions& o)
    : stub(pb::Coordinator::NewStub(coord::make_channel(o))), token(o.token) {}

TestClient::TestClient(const std::string& address, const std::string& t)
    : TestClient(coord::ClientOptions{address, t, "", "", ""}) {}

std::unique_ptr<grpc::ClientContext> TestClient::ctx(const std::string* t) const {
  auto c = std::make_unique<grpc::ClientContext>();
  const std::string& use = t ? *t : token;
  if (!use.empty()) c->AddMetadata("authorization", "Bearer " + use);
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return c;
}

int http_get(int port, const std::string& path, std::string* body) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t end = resp.find("\r\n\r\n");
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return -1;
  if (body) *body = resp.substr(end + 4);
  return std::stoi(resp.substr(9, 3));
}

void make_certificates(const std::string& dir) {
  write_file(dir + "/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  write_file(dir + "/client.ext", "extendedKeyUsage=clientAuth\n");
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "set -e; cd '" + dir +
      "'; "
      "openssl req -x509 " +
      ec +
      " -keyout ca.key -out ca.pem -days 2 -subj /CN=kiln-test-ca; "
      "openssl req " +
      ec +
      " -keyout server.key -out server.csr -subj /CN=localhost; "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile server.ext; "
      "openssl req " +
      ec +
      " -keyout client.key -out client.csr -subj /CN=kiln-test-client; "
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out client.pem -days 2 -extfile client.ext";
  std::string out;
  if (run_command("bash -c \"" + script + "\"", &out) != 0) {
    throw std::runtime_error("openssl failed:\n" + out);
  }
}

std::vector<std::string> coord_log_lines() { return capture_sink()->lines(); }

void clear_coord_log() { capture_sink()->clear(); }

bool coord_logged(const std::vector<std::string>& parts) {
  for (const std::string& line : coord_log_lines()) {
    bool all = true;
    for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

pb::RegisterRequest register_request(const std::string& job, int rank, int world,
                                     const std::string& root) {
  pb::RegisterRequest r;
  r.set_job(job);
  r.set_rank(rank);
  r.set_world(world);
  r.set_host("test-host");
  r.set_pid(1000 + rank);
  r.set_config_hash("00000000deadbeef");
  r.set_checkpoint_root(root);
  return r;
}

}  // namespace kiln::test
