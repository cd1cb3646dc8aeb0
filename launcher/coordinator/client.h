// The client side of the coordinator, shared by the reporter, `kiln status`, the tests and the
// benchmark: a channel (plaintext, TLS, or mutual TLS from PEM files) with reconnection tuned
// for a coordinator that restarts, and call contexts carrying the job's token and a deadline.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "launcher/coordinator/kiln.grpc.pb.h"

namespace kiln::coord {

struct ClientOptions {
  std::string address;  // host:port
  std::string token;
  std::string tls_ca;    // PEM file: use TLS and trust this CA (empty: plaintext)
  std::string tls_cert;  // PEM files: a client certificate for mutual TLS
  std::string tls_key;
};

std::shared_ptr<grpc::Channel> make_channel(const ClientOptions& o);
// Sets the token metadata and a deadline `timeout_s` from now.
void prepare_context(grpc::ClientContext& ctx, const std::string& token, double timeout_s);
// "UNAVAILABLE: connection refused" for logs and errors.
std::string describe(const grpc::Status& s);

}  // namespace kiln::coord
