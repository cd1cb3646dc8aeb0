// Coordinator channels and call contexts.
#include "launcher/coordinator/client.h"

#include <fmt/format.h>

#include "core/error.h"
#include "launcher/coordinator/server.h"

namespace kiln::coord {

std::shared_ptr<grpc::Channel> make_channel(const ClientOptions& o) {
  KILN_CHECK(!o.address.empty(),
             "the coordinator address is empty (coordinator.address or "
             "--coordinator: HOST:PORT)");
  split_host_port(o.address, "coordinator address");
  KILN_CHECK(o.tls_cert.empty() == o.tls_key.empty(),
             "a client certificate and its key go together (coordinator.tls_cert and tls_key)");
  KILN_CHECK(o.tls_cert.empty() || !o.tls_ca.empty(),
             "a client certificate needs TLS: set the CA that signed the coordinator's "
             "certificate too (coordinator.tls_ca)");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.tls_ca.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_pem(o.tls_ca, "coordinator.tls_ca");
    if (!o.tls_cert.empty()) {
      ssl.pem_cert_chain = read_pem(o.tls_cert, "coordinator.tls_cert");
      ssl.pem_private_key = read_pem(o.tls_key, "coordinator.tls_key");
    }
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // gRPC's default reconnect backoff grows to two minutes; a restarted coordinator should see
  // its workers again within a second or so.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(1 << 20);
  return grpc::CreateCustomChannel(o.address, creds, args);
}

void prepare_context(grpc::ClientContext& ctx, const std::string& token, double timeout_s) {
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
}

std::string describe(const grpc::Status& s) {
  static const char* names[] = {"OK",
                                "CANCELLED",
                                "UNKNOWN",
                                "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED",
                                "NOT_FOUND",
                                "ALREADY_EXISTS",
                                "PERMISSION_DENIED",
                                "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION",
                                "ABORTED",
                                "OUT_OF_RANGE",
                                "UNIMPLEMENTED",
                                "INTERNAL",
                                "UNAVAILABLE",
                                "DATA_LOSS",
                                "UNAUTHENTICATED"};
  const int code = static_cast<int>(s.error_code());
  return fmt::format("{}: {}", code >= 0 && code <= 16 ? names[code] : "?", s.error_message());
}

}  // namespace kiln::coord
