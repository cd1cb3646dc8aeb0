// `kiln status`: a job at a glance from the coordinator (ranks, hosts, step, samples/s,
// heartbeat age, latest checkpoint, restarts), or the list of jobs; --json for scripts.
#include <fmt/chrono.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>

#include "core/error.h"
#include "launcher/commands.h"
#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/client.h"
#include "launcher/metrics.h"

namespace kiln {

namespace {

namespace pb = ::kiln::coord::v1;

struct StatusFlags {
  std::string coordinator;
  std::string job;
  bool json = false;
  std::string token_file;
  std::string tls_ca, tls_cert, tls_key;
  double timeout_s = 5;
};

std::string clock_time(double unix_s) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S}", fmt::localtime(static_cast<std::time_t>(unix_s)));
}

std::string short_name(int value, const std::string& full) {
  // "PHASE_TRAINING" -> "training"
  std::string s = full.substr(full.find('_') + 1);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value == 0 ? "-" : s;
}

std::string age(double seconds) {
  return seconds < 0 ? std::string("never") : format_duration(seconds) + " ago";
}

std::string to_json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opt;
  opt.preserve_proto_field_names = true;
  opt.always_print_primitive_fields = true;
  opt.add_whitespace = true;
  auto s = google::protobuf::util::MessageToJsonString(m, &out, opt);
  KILN_CHECK(s.ok(), "cannot print the reply as JSON: {}", s.ToString());
  return out;
}

void print_job(const pb::JobStatus& j) {
  const double now = j.server_time();
  std::printf("job %s  generation %lld  world %d  restarts %d (%d after failures)\n",
              j.job().c_str(), static_cast<long long>(j.generation()), j.world(), j.restarts(),
              j.failures());
  std::printf("step %lld  |  %.1f samples/s  |  checkpoint root %s\n",
              static_cast<long long>(j.step()), j.samples_per_s(),
              j.checkpoint_root().empty() ? "(none)" : j.checkpoint_root().c_str());
  if (j.has_latest_checkpoint()) {
    const pb::Checkpoint& c = j.latest_checkpoint();
    std::printf(
        "latest checkpoint: step %lld (generation %lld), committed %s, written in %.2f "
        "s: %s\n",
        static_cast<long long>(c.step()), static_cast<long long>(c.generation()),
        age(now - c.committed_at()).c_str(), c.duration_s(), c.path().c_str());
  } else {
    std::printf("latest checkpoint: none committed\n");
  }
  std::printf("checkpoints: %d committed, %d pending\n", j.checkpoints_size(),
              j.pending_checkpoints_size());
  if (j.has_action()) {
    const pb::PendingAction& a = j.action();
    std::printf("pending action: %s (id %llu, applied by %d/%d ranks)%s%s\n",
                short_name(a.action(), pb::Action_Name(a.action())).c_str(),
                static_cast<unsigned long long>(a.id()), a.applied_ranks(), j.world(),
                a.reason().empty() ? "" : ": ", a.reason().c_str());
  }
  std::printf("\n%-5s %-20s %-8s %-8s %-12s %-11s %-9s %s\n", "rank", "host", "pid", "step",
              "phase", "samples/s", "loss", "heartbeat");
  for (const pb::Member& m : j.members()) {
    std::printf("%-5d %-20s %-8lld %-8lld %-12s %-11.1f %-9.4f %s\n", m.rank(), m.host().c_str(),
                static_cast<long long>(m.pid()), static_cast<long long>(m.step()),
                short_name(m.phase(), pb::Phase_Name(m.phase())).c_str(), m.samples_per_s(),
                m.loss(), age(m.heartbeat_age_s()).c_str());
  }
  if (j.members_size() < j.world()) {
    std::printf("(%d of %d ranks registered)\n", j.members_size(), j.world());
  }
  std::printf("\nhistory:\n");
  for (const pb::Generation& g : j.generations()) {
    std::printf("  generation %-4lld world %-5d %-11s %s  %s\n",
                static_cast<long long>(g.generation()), g.world(),
                short_name(g.cause(), pb::Cause_Name(g.cause())).c_str(),
                clock_time(g.started_at()).c_str(), g.reason().c_str());
  }
  if (j.events_size() > 0) {
    std::printf("\nrecent events:\n");
    for (const pb::Event& e : j.events()) {
      std::printf("  %s  %-11s %s\n", clock_time(e.time()).c_str(), e.kind().c_str(),
                  e.message().c_str());
    }
  }
}

int run_status(const StatusFlags& f) {
  coord::ClientOptions o;
  o.address = f.coordinator;
  o.token = coord::client_token(f.token_file, f.job);
  o.tls_ca = f.tls_ca;
  o.tls_cert = f.tls_cert;
  o.tls_key = f.tls_key;
  auto stub = pb::Coordinator::NewStub(coord::make_channel(o));
  grpc::ClientContext ctx;
  coord::prepare_context(ctx, o.token, f.timeout_s);
  if (f.job.empty()) {
    pb::ListJobsReply reply;
    grpc::Status s = stub->ListJobs(&ctx, pb::ListJobsRequest(), &reply);
    KILN_CHECK(s.ok(), "coordinator {}: ListJobs failed: {}", f.coordinator, coord::describe(s));
    if (f.json) {
      std::fputs(to_json(reply).c_str(), stdout);
      std::fputs("\n", stdout);
      return 0;
    }
    std::printf("%-24s %-10s %-12s %-8s %s\n", "job", "generation", "ranks", "step",
                "latest checkpoint");
    for (const pb::JobSummary& j : reply.jobs()) {
      std::printf(
          "%-24s %-10lld %-12s %-8lld %s\n", j.job().c_str(),
          static_cast<long long>(j.generation()),
          fmt::format("{}/{}", j.registered(), j.world()).c_str(), static_cast<long long>(j.step()),
          j.latest_checkpoint_step() < 0 ? "none"
                                         : std::to_string(j.latest_checkpoint_step()).c_str());
    }
    return 0;
  }
  pb::GetJobRequest req;
  req.set_job(f.job);
  pb::JobStatus reply;
  grpc::Status s = stub->GetJob(&ctx, req, &reply);
  KILN_CHECK(s.ok(), "coordinator {}: GetJob '{}' failed: {}", f.coordinator, f.job,
             coord::describe(s));
  if (f.json) {
    std::fputs(to_json(reply).c_str(), stdout);
    std::fputs("\n", stdout);
  } else {
    print_job(reply);
  }
  return 0;
}

}  // namespace

CommandRunner add_status_command(CLI::App& app) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Show a job at the coordinator: ranks, hosts, step, samples/s, heartbeats, "
      "latest checkpoint, restarts (without --job: the list of jobs)");
  cmd->add_option("--coordinator", flags->coordinator, "HOST:PORT of kiln coordinator")->required();
  cmd->add_option("--job", flags->job, "job id");
  cmd->add_flag("--json", flags->json, "print the coordinator's reply as JSON");
  cmd->add_option("--token-file", flags->token_file,
                  "the job's token file (default: KILN_COORDINATOR_TOKEN)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-ca", flags->tls_ca, "PEM CA of the coordinator's certificate: use TLS")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-cert", flags->tls_cert, "PEM client certificate (mutual TLS)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", flags->tls_key, "PEM key of --tls-cert")->check(CLI::ExistingFile);
  cmd->add_option("--timeout", flags->timeout_s, "seconds to wait for the coordinator")
      ->capture_default_str();
  return [flags] { return run_status(*flags); };
}

}  // namespace kiln
