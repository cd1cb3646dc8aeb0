// The job's coordinator, as the supervisor starts and calls it.
#include "launcher/elastic/coordinator_link.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "launcher/coordinator/auth.h"

namespace kiln::elastic {

namespace fs = std::filesystem;

namespace {

// The coordinator takes one line of at most 1024 bytes for reasons and messages.
std::string one_line(const std::string& text) {
  std::string s = text.size() > 1000 ? text.substr(0, 1000) + "..." : text;
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return s;
}

}  // namespace

LocalCoordinator::LocalCoordinator(const std::string& kiln, const std::string& listen,
                                   const std::string& state_dir) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  KILN_CHECK(!ec, "cannot create the coordinator's state folder {}: {}", state_dir, ec.message());
  token_file_ = (fs::path(state_dir) / "token").string();
  log_path_ = (fs::path(state_dir) / "log").string();
  if (fs::exists(token_file_)) {
    token_ = coord::client_token(token_file_, "");
  } else {
    token_ = coord::generate_token();
    const std::string tmp = token_file_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << token_ << "\n";
      KILN_CHECK(out.good(), "cannot write the job token to {}: {}", tmp, errno_string());
    }
    fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
    fs::rename(tmp, token_file_);
  }
  const std::string ready = (fs::path(state_dir) / "ready.json").string();
  fs::remove(ready, ec);
  process_ = std::make_unique<ChildProcess>(ChildOptions{
      {kiln, "coordinator", "--listen", listen, "--state-dir", state_dir, "--token-file",
       token_file_, "--http-port", "0", "--ready-file", ready},
      {},
      nullptr,
      log_path_,
      SIGTERM});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(ready)) {
    std::string tail;
    if (process_->poll()) {
      std::ifstream in(log_path_);
      std::stringstream ss;
      ss << in.rdbuf();
      tail = ss.str();
      if (tail.size() > 2000) tail = tail.substr(tail.size() - 2000);
      KILN_FAIL("the coordinator did not start ({}); its log {} ends with:\n{}",
                process_->describe_exit(), log_path_, tail);
    }
    KILN_CHECK(std::chrono::steady_clock::now() < deadline,
               "the coordinator did not serve within 60 s; see its log {}", log_path_);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream in(ready);
  const nlohmann::json j = nlohmann::json::parse(in);
  address_ = j.at("address").get<std::string>();
  http_port_ = j.at("http_port").get<int>();
}

LocalCoordinator::~LocalCoordinator() {
  if (!process_->poll()) {
    process_->signal_group(SIGTERM);
    if (!process_->wait_for(10)) process_->kill_session();
  }
}

CoordinatorLink::CoordinatorLink(coord::ClientOptions options, std::string job)
    : o_(std::move(options)),
      job_(std::move(job)),
      stub_(pb::Coordinator::NewStub(coord::make_channel(o_))) {}

void CoordinatorLink::failed(const char* call, const grpc::Status& s) {
  const auto now = std::chrono::steady_clock::now();
  if (reachable_ || now - last_log_ > std::chrono::minutes(1)) {
    KILN_LOG_WARN("launch", "coordinator {}: {} failed: {} (the job goes on; calls are retried)",
                  o_.address, call, coord::describe(s));
    last_log_ = now;
  }
  reachable_ = false;
}

std::optional<int64_t> CoordinatorLink::start_generation(int world, pb::Cause cause,
                                                         const std::string& reason,
                                                         const std::string& checkpoint_root) {
  grpc::ClientContext ctx;
  coord::prepare_context(ctx, o_.token, 5);
  pb::StartGenerationRequest req;
  req.set_job(job_);
  req.set_world(world);
  req.set_cause(cause);
  req.set_reason(one_line(reason));
  req.set_checkpoint_root(checkpoint_root);
  pb::StartGenerationReply reply;
  grpc::Status s = stub_->StartGeneration(&ctx, req, &reply);
  if (!s.ok()) {
    failed("StartGeneration", s);
    return std::nullopt;
  }
  reachable_ = true;
  return reply.generation();
}

bool CoordinatorLink::record_event(const std::string& kind, const std::string& message) {
  grpc::ClientContext ctx;
  coord::prepare_context(ctx, o_.token, 2);
  pb::RecordEventRequest req;
  req.set_job(job_);
  req.set_kind(kind);
  req.set_message(one_line(message));
  pb::RecordEventReply reply;
  grpc::Status s = stub_->RecordEvent(&ctx, req, &reply);
  if (!s.ok()) {
    failed("RecordEvent", s);
    return false;
  }
  reachable_ = true;
  return true;
}

bool CoordinatorLink::set_action(pb::Action action, const std::string& reason) {
  grpc::ClientContext ctx;
  coord::prepare_context(ctx, o_.token, 2);
  pb::SetActionRequest req;
  req.set_job(job_);
  req.set_action(action);
  req.set_reason(one_line(reason));
  pb::SetActionReply reply;
  grpc::Status s = stub_->SetAction(&ctx, req, &reply);
  if (!s.ok()) {
    failed("SetAction", s);
    return false;
  }
  reachable_ = true;
  return true;
}

std::optional<pb::JobStatus> CoordinatorLink::get_job(double timeout_s) {
  grpc::ClientContext ctx;
  coord::prepare_context(ctx, o_.token, timeout_s);
  pb::GetJobRequest req;
  req.set_job(job_);
  req.set_max_events(1);
  pb::JobStatus reply;
  grpc::Status s = stub_->GetJob(&ctx, req, &reply);
  if (!s.ok()) {
    failed("GetJob", s);
    return std::nullopt;
  }
  reachable_ = true;
  return reply;
}

}  // namespace kiln::elastic
