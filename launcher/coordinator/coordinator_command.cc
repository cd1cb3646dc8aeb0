// `kiln coordinator`: runs the job coordinator until SIGINT or SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/coordinator/server.h"

namespace kiln {

namespace {

struct CoordinatorFlags {
  coord::ServerOptions server;
  std::string ready_file;
};

// Written once the server accepts calls, so that scripts and `kiln launch` can wait for it and
// learn the ports chosen for port 0. Renamed into place: a reader never sees half of it.
void write_ready_file(const std::string& path, const coord::CoordinatorServer& s,
                      const std::string& host) {
  nlohmann::json j = {{"address", fmt::format("{}:{}", host, s.port())},
                      {"port", s.port()},
                      {"http_port", s.http_port()},
                      {"pid", static_cast<int64_t>(::getpid())},
                      {"coordinator_id", s.coordinator_id()}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump() << "\n";
    KILN_CHECK(out.good(), "--ready-file {}: cannot write {}: {}", path, tmp, errno_string());
  }
  KILN_SYS_CHECK(::rename(tmp.c_str(), path.c_str()), "--ready-file: cannot rename {} to {}", tmp,
                 path);
}

int run_coordinator(const CoordinatorFlags& flags) {
  // Block the stop signals in every thread (gRPC's included) and take them here with sigwait,
  // so that shutdown runs on this thread, not inside a signal handler.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  KILN_CHECK(pthread_sigmask(SIG_BLOCK, &stop, nullptr) == 0, "cannot block SIGINT/SIGTERM");

  coord::CoordinatorServer server(flags.server);
  std::string host = coord::split_host_port(flags.server.listen, "--listen").first;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  if (!flags.ready_file.empty()) write_ready_file(flags.ready_file, server, host);

  int sig = 0;
  sigwait(&stop, &sig);
  KILN_LOG_INFO("coord", "{} received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.shutdown();
  return 0;
}

}  // namespace

CommandRunner add_coordinator_command(CLI::App& app) {
  auto flags = std::make_shared<CoordinatorFlags>();
  CLI::App* cmd =
      app.add_subcommand("coordinator",
                         "Run the job coordinator: membership, heartbeats, metrics, checkpoint "
                         "registry and key-value store over gRPC, state kept in SQLite");
  cmd->add_option("--listen", flags->server.listen,
                  "HOST:PORT to serve gRPC on (port 0 = any free port; see --ready-file)")
      ->capture_default_str();
  cmd->add_option("--state-dir", flags->server.state_dir,
                  "folder of the state database (created; one coordinator per folder)")
      ->required();
  cmd->add_option("--http-port", flags->server.http_port,
                  "serve Prometheus metrics at http://HOST:PORT/metrics on the --listen host "
                  "(0 = any free port; default: off)");
  cmd->add_option("--token-file", flags->server.token_file,
                  "accepted tokens, one per line: TOKEN or JOB TOKEN (default: "
                  "KILN_COORDINATOR_TOKEN, else STATE_DIR/token, generated)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-cert", flags->server.tls_cert, "PEM certificate: serve TLS")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", flags->server.tls_key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-client-ca", flags->server.tls_client_ca,
                  "PEM CA: require client certificates signed by it (mutual TLS)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ready-file", flags->ready_file,
                  "write {address, port, http_port, pid, coordinator_id} as JSON here once "
                  "serving");
  return [flags] { return run_coordinator(*flags); };
}

}  // namespace kiln
