// The coordinator's HTTP endpoint for Prometheus, on plain sockets.
#include "launcher/coordinator/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

namespace kiln::coord {

namespace {

constexpr size_t kMaxRequest = 8192;
constexpr int kReadTimeoutMs = 2000;

void send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the scraper went away; nothing to do
    sent += static_cast<size_t>(n);
  }
}

std::string response(int code, const char* reason, const std::string& content_type,
                     const std::string& body, bool head) {
  std::string r = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", code,
      reason, content_type, body.size());
  if (!head) r += body;
  return r;
}

}  // namespace

HttpServer::HttpServer(const std::string& host, int port, std::function<std::string()> render)
    : render_(std::move(render)) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  KILN_CHECK(rc == 0, "--http-port: cannot resolve host '{}': {}", host, gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  listen_fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  KILN_SYS_CHECK(listen_fd_, "cannot create the metrics socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listen_fd_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(listen_fd_, 64) != 0) {
    std::string err = errno_string();
    ::close(listen_fd_);
    KILN_FAIL(
        "cannot listen for /metrics on {}:{}: {}; pick another --http-port (0 = any free "
        "port)",
        host, port, err);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  KILN_SYS_CHECK(::pipe2(wake_, O_CLOEXEC), "cannot create a pipe for the metrics server");
  thread_ = std::thread([this] { run(); });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (thread_.joinable()) {
    char c = 0;
    (void)!::write(wake_[1], &c, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void HttpServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    try {
      serve(fd);
    } catch (const std::exception& e) {
      KILN_LOG_WARN("coord", "metrics request failed: {}", e.what());
    }
    ::close(fd);
  }
}

void HttpServer::serve(int fd) {
  // Read up to the end of the headers; a request body is never expected.
  std::string req;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadTimeoutMs);
  while (req.find("\r\n\r\n") == std::string::npos) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    if (left <= 0 || req.size() > kMaxRequest) {
      send_all(fd, response(408, "Request Timeout", "text/plain", "request too slow or too long\n",
                            false));
      return;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  const std::string line = req.substr(0, req.find("\r\n"));
  const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1 || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    send_all(fd, response(400, "Bad Request", "text/plain", "malformed request line\n", false));
    return;
  }
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    send_all(fd, response(405, "Method Not Allowed", "text/plain", "GET /metrics only\n", false));
  } else if (target != "/metrics") {
    send_all(fd, response(404, "Not Found", "text/plain", "the metrics are at /metrics\n", head));
  } else {
    send_all(fd, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render_(), head));
  }
}

}  // namespace kiln::coord
