// Assembly of the coordinator: state folder, store, registry, writer, gRPC and HTTP servers.
#include "launcher/coordinator/server.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/durable_writer.h"
#include "launcher/coordinator/http_server.h"
#include "launcher/coordinator/kv_store.h"
#include "launcher/coordinator/prometheus.h"
#include "launcher/coordinator/registry.h"
#include "launcher/coordinator/service.h"
#include "launcher/coordinator/store.h"

namespace kiln::coord {

namespace {

constexpr int kEventsPerJob = 200;
constexpr int kMaxRequestBytes = 1 << 20;
constexpr int kMaxReplyBytes = 64 << 20;

}  // namespace

std::string read_pem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK(in.good(), "{} {}: cannot read the file: {}", flag, path, errno_string());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  KILN_CHECK(text.find("-----BEGIN ") != std::string::npos,
             "{} {}: not a PEM file (no -----BEGIN line)", flag, path);
  return text;
}

std::pair<std::string, int> split_host_port(const std::string& address, const char* flag) {
  std::string host, port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    KILN_CHECK(
        close != std::string::npos && close + 1 < address.size() && address[close + 1] == ':',
        "{} '{}': expected [IPv6]:PORT", flag, address);
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    KILN_CHECK(colon != std::string::npos && colon > 0,
               "{} '{}': expected HOST:PORT, e.g. "
               "127.0.0.1:7070",
               flag, address);
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  KILN_CHECK(!port.empty() && *end == '\0' && p >= 0 && p <= 65535,
             "{} '{}': port '{}' is not a number in [0, 65535]", flag, address, port);
  return {host, static_cast<int>(p)};
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

CoordinatorServer::CoordinatorServer(const ServerOptions& o) {
  KILN_CHECK(!o.state_dir.empty(),
             "--state-dir is required: the folder that keeps the "
             "coordinator's database");
  KILN_CHECK(o.tls_cert.empty() == o.tls_key.empty(),
             "--tls-cert and --tls-key go together (the server's certificate and its key)");
  KILN_CHECK(o.tls_client_ca.empty() || !o.tls_cert.empty(),
             "--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first");
  auto [host, requested_port] = split_host_port(o.listen, "--listen");
  id_ = generate_token().substr(0, 16);
  started_at_ = unix_now();

  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  KILN_CHECK(!ec, "cannot create --state-dir {}: {}", o.state_dir, ec.message());
  const std::string lock_path = (std::filesystem::path(o.state_dir) / "lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  KILN_SYS_CHECK(lock_fd_, "cannot open {}", lock_path);
  // The lock goes with the process, so a coordinator killed with SIGKILL never leaves it held.
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    KILN_FAIL(
        "another coordinator is using --state-dir {} (it holds {}); stop it or pick "
        "another folder",
        o.state_dir, lock_path);
  }

  TokenSet tokens(server_tokens(o.token_file, o.state_dir));
  store_ = std::make_unique<Store>(o.state_dir);
  Snapshot snap = store_->load(kEventsPerJob);
  registry_ = std::make_unique<Registry>(id_);
  registry_->restore(snap);
  kv_ = std::make_unique<KvStore>();
  kv_->restore(snap.kv);
  writer_ = std::make_unique<DurableWriter>(*store_);
  service_ = std::make_unique<CoordinatorService>(*registry_, *kv_, *writer_, std::move(tokens));

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (o.tls_cert.empty()) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl(
        o.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_key_cert_pairs.push_back(
        {read_pem(o.tls_key, "--tls-key"), read_pem(o.tls_cert, "--tls-cert")});
    if (!o.tls_client_ca.empty()) ssl.pem_root_certs = read_pem(o.tls_client_ca, "--tls-client-ca");
    creds = grpc::SslServerCredentials(ssl);
  }
  if (!is_loopback_host(host)) {
    KILN_LOG_WARN("coord", "listening on {} beyond this machine{}", o.listen,
                  o.tls_cert.empty() ? ": without TLS the job's token crosses the network in "
                                       "clear; pass --tls-cert/--tls-key"
                                     : "");
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen, creds, &port_);
  // Without this gRPC sets SO_REUSEPORT, and a second coordinator on the same port would share
  // the calls with the first instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.SetMaxSendMessageSize(kMaxReplyBytes);
  // One queue thread per two cores: calls are short, and the durable writer and the workers
  // need the other cores.
  const int threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 8);
  service_->attach(builder, threads);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    shutdown();
    KILN_FAIL(
        "cannot listen on {}: the port may be taken or the address not local; pick "
        "another --listen (port 0 = any free port)",
        o.listen);
  }
  service_->start();
  if (o.http_port >= 0) {
    http_ = std::make_unique<HttpServer>(host, o.http_port, [this] { return metrics_text(); });
  }
  KILN_LOG_INFO("coord",
                "coordinator {} serving on {}:{} ({}{}), /metrics {}, state {} ({} "
                "jobs)",
                id_, host, port_, o.tls_cert.empty() ? "plaintext" : "TLS",
                o.tls_client_ca.empty() ? "" : ", client certificates required",
                http_ ? fmt::format("on http://{}:{}/metrics", host, http_->port()) : "off",
                store_->path(), snap.jobs.size());
}

CoordinatorServer::~CoordinatorServer() { shutdown(); }

int CoordinatorServer::http_port() const { return http_ ? http_->port() : -1; }

std::string CoordinatorServer::metrics_text() const {
  PromWriter out;
  out.family("kiln_coordinator_start_time_seconds", "gauge",
             "When this coordinator process started (Unix time)");
  out.sample("kiln_coordinator_start_time_seconds", {}, started_at_);
  out.family("kiln_coordinator_commits_total", "counter",
             "Database transactions committed (each may hold many requests)");
  out.sample("kiln_coordinator_commits_total", {}, static_cast<double>(writer_->commits()));
  out.family("kiln_coordinator_durable_requests_total", "counter",
             "Requests written to the database");
  out.sample("kiln_coordinator_durable_requests_total", {}, static_cast<double>(writer_->ops()));
  service_->write_prometheus(out);
  registry_->write_prometheus(out);
  return out.text();
}

void CoordinatorServer::shutdown() {
  if (http_) http_->stop();
  // Every call is answered (waiting reads now, the rest as the writer drains) before the
  // completion queues are shut down and drained.
  if (kv_) kv_->shutdown();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (writer_) writer_->stop();
  if (service_) service_->stop();
  server_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

}  // namespace kiln::coord
