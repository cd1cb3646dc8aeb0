// The coordinator as one object: the state folder (locked against a second coordinator), the
// SQLite store loaded into the registry, the durable writer, the gRPC server (plaintext or TLS,
// optionally mutual), and the /metrics HTTP endpoint. Used by `kiln coordinator` and by tests
// that run a coordinator in-process.
#pragma once

#include <memory>
#include <string>

namespace grpc {
class Server;
}

namespace kiln::coord {

class Store;
class Registry;
class KvStore;
class DurableWriter;
class CoordinatorService;
class HttpServer;

struct ServerOptions {
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks a free one
  std::string state_dir;
  int http_port = -1;             // -1: no /metrics endpoint; 0: a free port
  std::string token_file;         // empty: KILN_COORDINATOR_TOKEN, else state_dir/token
  std::string tls_cert, tls_key;  // PEM files: serve TLS
  std::string tls_client_ca;      // PEM file: require client certificates signed by it
};

class CoordinatorServer {
 public:
  explicit CoordinatorServer(const ServerOptions& options);
  ~CoordinatorServer();  // shutdown()
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  int port() const { return port_; }
  int http_port() const;  // -1 without the endpoint
  const std::string& coordinator_id() const { return id_; }
  // The Prometheus exposition served at /metrics.
  std::string metrics_text() const;
  // Answers waiting reads, stops accepting calls, drains the durable writer. Idempotent.
  void shutdown();

 private:
  std::string id_;
  int lock_fd_ = -1;
  int port_ = 0;
  double started_at_ = 0;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<DurableWriter> writer_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> http_;
};

// Reads a whole (PEM) file; errors name the flag it came from.
std::string read_pem(const std::string& path, const char* flag);
// Splits "host:port" / "[v6]:port"; throws naming `flag` when malformed.
std::pair<std::string, int> split_host_port(const std::string& address, const char* flag);
bool is_loopback_host(const std::string& host);

}  // namespace kiln::coord
