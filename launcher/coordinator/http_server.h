// A minimal HTTP/1.1 server for the coordinator's Prometheus endpoint: GET /metrics (and HEAD),
// one connection at a time, `Connection: close`, bounded request size and read time. Anything
// else is 404 or 405. Runs its own thread; stop() or the destructor ends it.
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace kiln::coord {

class HttpServer {
 public:
  // Listens on host:port (port 0: a free one, see port()); `render` produces the body of
  // /metrics on the server's thread.
  HttpServer(const std::string& host, int port, std::function<std::string()> render);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  void stop();

 private:
  void run();
  void serve(int fd);

  std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: writing to it ends the accept loop
  int port_ = 0;
  std::thread thread_;
};

}  // namespace kiln::coord
