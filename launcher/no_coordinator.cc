// Builds without gRPC (KILN_WITH_GRPC off or its packages missing): the coordinator commands
// exist but say what to install, and a config that names a coordinator is refused.
#include "core/error.h"
#include "launcher/commands.h"
#include "launcher/reporter.h"

namespace kiln {

namespace {

constexpr const char* kHint =
    "this Kiln was built without the coordinator (KILN_WITH_GRPC): install libgrpc++-dev "
    "protobuf-compiler-grpc libprotobuf-dev libsqlite3-dev (scripts/setup.sh) and rebuild";

CommandRunner unavailable(CLI::App& app, const char* name, const char* help) {
  CLI::App* cmd = app.add_subcommand(name, help);
  cmd->allow_extras();
  return []() -> int { KILN_FAIL("{}", kHint); };
}

}  // namespace

std::unique_ptr<Reporter> make_reporter(const Config& cfg, int, int) {
  KILN_CHECK(cfg.coordinator.address.empty(), "{} is set, but {}", cfg.where("coordinator.address"),
             kHint);
  return nullptr;
}

CommandRunner add_coordinator_command(CLI::App& app) {
  return unavailable(app, "coordinator", "Run the job coordinator (not in this build)");
}

CommandRunner add_launch_command(CLI::App& app) {
  return unavailable(app, "launch", "Run an elastic job with a coordinator (not in this build)");
}

CommandRunner add_status_command(CLI::App& app) {
  return unavailable(app, "status", "Show a job at the coordinator (not in this build)");
}

}  // namespace kiln
