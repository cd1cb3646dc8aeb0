// make_reporter() for builds with the coordinator: the gRPC reporter from coordinator.* keys.
#include <filesystem>

#include "core/error.h"
#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/reporter.h"

namespace kiln {

std::unique_ptr<Reporter> make_reporter(const Config& cfg, int rank, int world) {
  const CoordinatorConfig& c = cfg.coordinator;
  if (c.address.empty()) return nullptr;
  coord::ReporterOptions o;
  o.client.address = c.address;
  o.client.token = coord::client_token(c.token_file, c.job);
  o.client.tls_ca = c.tls_ca;
  o.client.tls_cert = c.tls_cert;
  o.client.tls_key = c.tls_key;
  o.job = c.job;
  if (c.generation >= 0) o.generation = c.generation;
  o.rank = rank;
  o.world = world;
  o.config_hash = config_hash(cfg);
  if (!cfg.checkpoint.dir.empty()) {
    // The coordinator checks reported checkpoint paths against this root, lexically.
    std::filesystem::path root = std::filesystem::absolute(cfg.checkpoint.dir).lexically_normal();
    std::string s = root.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    o.checkpoint_root = s;
  }
  o.heartbeat_s = c.heartbeat_s;
  o.queue_capacity = static_cast<size_t>(c.metrics_queue);
  return std::make_unique<coord::GrpcReporter>(std::move(o));
}

}  // namespace kiln
