// The coordinator's service in-process on a loopback port: authentication, field checks and
// state checks each answer with their status code and a log line; commits, the key-value store
// with waiting reads, and actions behave as kiln.proto says.
#include <gtest/gtest.h>

#include <thread>

#include "coord_test_util.h"
#include "core/error.h"
#include "launcher/coordinator/server.h"
#include "test_util.h"

namespace kiln::coord {
namespace {

using grpc::StatusCode;
namespace pb = ::kiln::coord::v1;

const std::string kToken = "admin-token-0123456789abcdef";
const std::string kScoped = "scoped-token-0123456789abcdef";

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::clear_coord_log();
    test::write_file(dir_.path() + "/tokens", kToken + "\nscoped " + kScoped + "\n");
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.state_dir = dir_.path() + "/state";
    o.token_file = dir_.path() + "/tokens";
    o.http_port = 0;
    server_ = std::make_unique<CoordinatorServer>(o);
    client_ = std::make_unique<test::TestClient>(address(), kToken);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  grpc::Status do_register(const pb::RegisterRequest& r, const std::string* token = nullptr) {
    pb::RegisterReply reply;
    return client_->stub->Register(client_->ctx(token).get(), r, &reply);
  }
  grpc::Status commit(const std::string& job, int rank, int64_t step, const std::string& path) {
    pb::CommitCheckpointRequest c;
    c.set_job(job);
    c.set_rank(rank);
    c.set_step(step);
    c.set_path(path);
    pb::CommitCheckpointReply reply;
    return client_->stub->CommitCheckpoint(client_->ctx().get(), c, &reply);
  }
  // The status, checked to have left a "refused METHOD ... CODE" log line.
  void expect_refused(const grpc::Status& s, StatusCode code, const std::string& method,
                      const std::string& code_name) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_TRUE(test::coord_logged({"refused " + method, code_name}))
        << "no log line for " << method << " " << code_name;
  }

  test::TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<test::TestClient> client_;
};

TEST_F(ServiceTest, WrongMissingOrMalformedTokensAreUnauthenticated) {
  const pb::RegisterRequest r = test::register_request("j", 0, 1);
  const std::string none, wrong = "wrong-token-0123456789abcdef";
  expect_refused(do_register(r, &none), StatusCode::UNAUTHENTICATED, "Register", "UNAUTHENTICATED");
  test::clear_coord_log();
  expect_refused(do_register(r, &wrong), StatusCode::UNAUTHENTICATED, "Register",
                 "UNAUTHENTICATED");
  auto ctx = client_->ctx(&none);
  ctx->AddMetadata("authorization", "Basic " + kToken);
  pb::PingReply pong;
  expect_refused(client_->stub->Ping(ctx.get(), pb::PingRequest(), &pong),
                 StatusCode::UNAUTHENTICATED, "Ping", "UNAUTHENTICATED");
  // A job's own token admits that job only.
  expect_refused(do_register(r, &kScoped), StatusCode::PERMISSION_DENIED, "Register",
                 "PERMISSION_DENIED");
  EXPECT_TRUE(do_register(test::register_request("scoped", 0, 1), &kScoped).ok());
  pb::ListJobsReply jobs;
  ASSERT_TRUE(client_->stub->ListJobs(client_->ctx(&kScoped).get(), {}, &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 1);
  EXPECT_EQ(jobs.jobs(0).job(), "scoped");
  // Nothing refused reached the state.
  pb::JobStatus s;
  pb::GetJobRequest get;
  get.set_job("j");
  EXPECT_EQ(client_->stub->GetJob(client_->ctx().get(), get, &s).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_TRUE(client_->stub->Ping(client_->ctx().get(), {}, &pong).ok());
  EXPECT_EQ(pong.coordinator_id(), server_->coordinator_id());
}

TEST_F(ServiceTest, MalformedAndOutOfRangeFieldsAreRefused) {
  pb::RegisterRequest r = test::register_request("bad/job", 0, 1);
  expect_refused(do_register(r), StatusCode::INVALID_ARGUMENT, "Register", "INVALID_ARGUMENT");
  r = test::register_request("j", 4, 4);
  expect_refused(do_register(r), StatusCode::OUT_OF_RANGE, "Register", "OUT_OF_RANGE");
  r = test::register_request("j", -1, 4);
  expect_refused(do_register(r), StatusCode::OUT_OF_RANGE, "Register", "OUT_OF_RANGE");
  r = test::register_request("j", 0, 0);
  expect_refused(do_register(r), StatusCode::OUT_OF_RANGE, "Register", "OUT_OF_RANGE");
  r = test::register_request("j", 0, 2, "relative/ckpt");
  expect_refused(do_register(r), StatusCode::INVALID_ARGUMENT, "Register", "INVALID_ARGUMENT");
  r = test::register_request("j", 0, 2);
  r.set_host("");
  expect_refused(do_register(r), StatusCode::INVALID_ARGUMENT, "Register", "INVALID_ARGUMENT");

  ASSERT_TRUE(do_register(test::register_request("j", 0, 2)).ok());
  pb::HeartbeatRequest hb;
  hb.set_job("j");
  hb.set_rank(0);
  hb.set_loss(std::nan(""));
  pb::HeartbeatReply hr;
  expect_refused(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr),
                 StatusCode::INVALID_ARGUMENT, "Heartbeat", "INVALID_ARGUMENT");
  hb.set_loss(1.0);
  hb.set_phase(static_cast<pb::Phase>(42));
  expect_refused(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr),
                 StatusCode::INVALID_ARGUMENT, "Heartbeat", "INVALID_ARGUMENT");
  hb.set_phase(pb::PHASE_TRAINING);
  hb.set_rank(7);
  expect_refused(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr), StatusCode::OUT_OF_RANGE,
                 "Heartbeat", "OUT_OF_RANGE");
  hb.set_rank(1);  // in range, not registered
  expect_refused(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr), StatusCode::NOT_FOUND,
                 "Heartbeat", "NOT_FOUND");

  pb::ReportMetricsRequest m;
  m.set_job("j");
  for (int i = 0; i < 1025; ++i) m.add_points()->set_seq(static_cast<uint64_t>(i + 1));
  pb::ReportMetricsReply mr;
  expect_refused(client_->stub->ReportMetrics(client_->ctx().get(), m, &mr),
                 StatusCode::INVALID_ARGUMENT, "ReportMetrics", "INVALID_ARGUMENT");

  // Messages over the server's size bound never reach a handler (a channel without the
  // client's own bound sends them).
  auto raw =
      pb::Coordinator::NewStub(grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  pb::KvPutRequest big;
  big.set_job("j");
  big.set_key("k");
  big.set_value(std::string(2 << 20, 'x'));
  pb::KvPutReply kr;
  EXPECT_EQ(raw->KvPut(client_->ctx().get(), big, &kr).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);
  big.set_value(std::string(65 * 1024, 'x'));
  expect_refused(client_->stub->KvPut(client_->ctx().get(), big, &kr), StatusCode::INVALID_ARGUMENT,
                 "KvPut", "INVALID_ARGUMENT");
}

TEST_F(ServiceTest, CheckpointPathTraversalIsRefused) {
  const std::string root = dir_.path() + "/ckpt";
  ASSERT_TRUE(do_register(test::register_request("j", 0, 1, root)).ok());
  expect_refused(commit("j", 0, 10, "../../../etc"), StatusCode::INVALID_ARGUMENT,
                 "CommitCheckpoint", "INVALID_ARGUMENT");
  EXPECT_TRUE(test::coord_logged({"'..'"}));
  expect_refused(commit("j", 0, 10, "step-10/../../x"), StatusCode::INVALID_ARGUMENT,
                 "CommitCheckpoint", "INVALID_ARGUMENT");
  expect_refused(commit("j", 0, 10, "/etc/passwd"), StatusCode::INVALID_ARGUMENT,
                 "CommitCheckpoint", "INVALID_ARGUMENT");
  EXPECT_TRUE(test::coord_logged({"outside the job's checkpoint root"}));
  expect_refused(commit("j", 0, -1, "step-x"), StatusCode::OUT_OF_RANGE, "CommitCheckpoint",
                 "OUT_OF_RANGE");
  expect_refused(commit("j", 1, 10, "step-10"), StatusCode::OUT_OF_RANGE, "CommitCheckpoint",
                 "OUT_OF_RANGE");
  ASSERT_TRUE(commit("j", 0, 10, root + "/step-00000010").ok());
  pb::GetJobRequest get;
  get.set_job("j");
  pb::JobStatus s;
  ASSERT_TRUE(client_->stub->GetJob(client_->ctx().get(), get, &s).ok());
  ASSERT_EQ(s.checkpoints_size(), 1);
  EXPECT_EQ(s.checkpoints(0).path(), root + "/step-00000010");
}

TEST_F(ServiceTest, ContradictionsWithTheJobAreFailedPreconditions) {
  ASSERT_TRUE(do_register(test::register_request("j", 0, 2, "/ckpt")).ok());
  pb::RegisterRequest r = test::register_request("j", 1, 2, "/ckpt");
  r.set_generation(0);
  r.set_config_hash("00000000000000ff");
  expect_refused(do_register(r), StatusCode::FAILED_PRECONDITION, "Register",
                 "FAILED_PRECONDITION");
  r = test::register_request("j", 1, 3, "/ckpt");
  r.set_generation(0);
  expect_refused(do_register(r), StatusCode::FAILED_PRECONDITION, "Register",
                 "FAILED_PRECONDITION");
  ASSERT_TRUE(do_register(test::register_request("j", 1, 2, "/ckpt")).ok());
  ASSERT_TRUE(commit("j", 0, 5, "step-5").ok());
  expect_refused(commit("j", 1, 5, "step-5-other"), StatusCode::FAILED_PRECONDITION,
                 "CommitCheckpoint", "FAILED_PRECONDITION");
  pb::StartGenerationRequest sg;
  sg.set_job("j");
  sg.set_generation(0);
  sg.set_world(2);
  sg.set_cause(pb::CAUSE_FAILURE);
  pb::StartGenerationReply sr;
  expect_refused(client_->stub->StartGeneration(client_->ctx().get(), sg, &sr),
                 StatusCode::FAILED_PRECONDITION, "StartGeneration", "FAILED_PRECONDITION");
  sg.clear_generation();
  sg.set_cause(pb::CAUSE_UNSPECIFIED);
  expect_refused(client_->stub->StartGeneration(client_->ctx().get(), sg, &sr),
                 StatusCode::INVALID_ARGUMENT, "StartGeneration", "INVALID_ARGUMENT");
  sg.set_cause(pb::CAUSE_FAILURE);
  sg.set_reason("rank 1 exited with signal 9");
  ASSERT_TRUE(client_->stub->StartGeneration(client_->ctx().get(), sg, &sr).ok());
  EXPECT_EQ(sr.generation(), 1);
  // The old generation's ranks are told they are over.
  pb::HeartbeatRequest hb;
  hb.set_job("j");
  hb.set_generation(0);
  pb::HeartbeatReply hr;
  expect_refused(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr),
                 StatusCode::FAILED_PRECONDITION, "Heartbeat", "FAILED_PRECONDITION");
  pb::RecordEventRequest ev;
  ev.set_job("j");
  ev.set_kind("host_blacklisted");
  ev.set_message("198.18.0.12 for 60 s");
  pb::RecordEventReply er;
  ASSERT_TRUE(client_->stub->RecordEvent(client_->ctx().get(), ev, &er).ok());
  pb::GetJobRequest get;
  get.set_job("j");
  pb::JobStatus s;
  ASSERT_TRUE(client_->stub->GetJob(client_->ctx().get(), get, &s).ok());
  EXPECT_EQ(s.generation(), 1);
  EXPECT_EQ(s.restarts(), 1);
  EXPECT_EQ(s.failures(), 1);
  EXPECT_EQ(s.generations(1).reason(), "rank 1 exited with signal 9");
  EXPECT_EQ(s.events(s.events_size() - 1).kind(), "host_blacklisted");
  EXPECT_EQ(s.members_size(), 0);  // nobody registered in generation 1 yet
}

TEST_F(ServiceTest, KeyValueReadsWaitForTheirKey) {
  pb::KvGetRequest get;
  get.set_job("j");
  get.set_key("gen0/nccl-id");
  pb::KvGetReply reply;
  expect_refused(client_->stub->KvGet(client_->ctx().get(), get, &reply), StatusCode::NOT_FOUND,
                 "KvGet", "NOT_FOUND");
  get.set_wait_ms(30);
  expect_refused(client_->stub->KvGet(client_->ctx().get(), get, &reply),
                 StatusCode::DEADLINE_EXCEEDED, "KvGet", "DEADLINE_EXCEEDED");
  get.set_wait_ms(600001);
  expect_refused(client_->stub->KvGet(client_->ctx().get(), get, &reply), StatusCode::OUT_OF_RANGE,
                 "KvGet", "OUT_OF_RANGE");

  get.set_wait_ms(20000);
  grpc::Status waited;
  std::thread reader([&] { waited = client_->stub->KvGet(client_->ctx().get(), get, &reply); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pb::KvPutRequest put;
  put.set_job("j");
  put.set_key("gen0/nccl-id");
  put.set_value(std::string("\x00\x01id", 4));
  pb::KvPutReply pr;
  ASSERT_TRUE(client_->stub->KvPut(client_->ctx().get(), put, &pr).ok());
  reader.join();
  ASSERT_TRUE(waited.ok()) << waited.error_message();
  EXPECT_EQ(reply.value(), std::string("\x00\x01id", 4));
  EXPECT_EQ(reply.version(), pr.version());
}

TEST_F(ServiceTest, ActionsTravelInHeartbeatReplies) {
  ASSERT_TRUE(do_register(test::register_request("j", 0, 1, "/ckpt")).ok());
  pb::SetActionRequest a;
  a.set_job("j");
  a.set_action(pb::ACTION_STOP);
  a.set_reason("preempted");
  pb::SetActionReply ar;
  ASSERT_TRUE(client_->stub->SetAction(client_->ctx().get(), a, &ar).ok());
  pb::HeartbeatRequest hb;
  hb.set_job("j");
  hb.set_step(3);
  hb.set_applied_action_id(ar.action_id());
  pb::HeartbeatReply hr;
  ASSERT_TRUE(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr).ok());
  EXPECT_EQ(hr.action(), pb::ACTION_STOP);
  EXPECT_EQ(hr.action_id(), ar.action_id());
  pb::GetJobRequest get;
  get.set_job("j");
  pb::JobStatus s;
  ASSERT_TRUE(client_->stub->GetJob(client_->ctx().get(), get, &s).ok());
  EXPECT_EQ(s.action().action(), pb::ACTION_STOP);
  EXPECT_EQ(s.action().applied_ranks(), 1);
  a.set_action(pb::ACTION_CONTINUE);
  ASSERT_TRUE(client_->stub->SetAction(client_->ctx().get(), a, &ar).ok());
  ASSERT_TRUE(client_->stub->Heartbeat(client_->ctx().get(), hb, &hr).ok());
  EXPECT_EQ(hr.action(), pb::ACTION_CONTINUE);
  a.set_job("nobody");
  expect_refused(client_->stub->SetAction(client_->ctx().get(), a, &ar), StatusCode::NOT_FOUND,
                 "SetAction", "NOT_FOUND");
}

TEST_F(ServiceTest, MetricsEndpointServesTheExposition) {
  ASSERT_TRUE(do_register(test::register_request("j", 0, 1)).ok());
  std::string body;
  EXPECT_EQ(test::http_get(server_->http_port(), "/metrics", &body), 200);
  EXPECT_NE(body.find("kiln_job_world_size{job=\"j\"} 1\n"), std::string::npos) << body;
  EXPECT_NE(body.find("kiln_coordinator_requests_total{method=\"Register\",code=\"OK\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(test::http_get(server_->http_port(), "/other", &body), 404);
}

}  // namespace
}  // namespace kiln::coord

namespace kiln::coord {
namespace {

// Certificates are made by openssl at test time; nothing secret is kept in the repository.
TEST(ServiceTls, MutualTlsAdmitsOnlyClientsWithACertificateFromTheCa) {
  test::TempDir dir;
  test::make_certificates(dir.path());
  const std::string d = dir.path() + "/";
  test::write_file(d + "tokens", kToken + "\n");
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.state_dir = d + "state";
  o.token_file = d + "tokens";
  o.tls_cert = d + "server.pem";
  o.tls_key = d + "server.key";
  o.tls_client_ca = d + "ca.pem";
  CoordinatorServer server(o);
  const std::string addr = "127.0.0.1:" + std::to_string(server.port());
  pb::PingReply pong;

  test::TestClient mutual(
      ClientOptions{addr, kToken, d + "ca.pem", d + "client.pem", d + "client.key"});
  grpc::Status s = mutual.stub->Ping(mutual.ctx().get(), {}, &pong);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(pong.coordinator_id(), server.coordinator_id());
  const std::string wrong = "wrong-token-0123456789abcdef";
  EXPECT_EQ(mutual.stub->Ping(mutual.ctx(&wrong).get(), {}, &pong).error_code(),
            StatusCode::UNAUTHENTICATED);

  test::TestClient no_cert(ClientOptions{addr, kToken, d + "ca.pem", "", ""});
  EXPECT_EQ(no_cert.stub->Ping(no_cert.ctx().get(), {}, &pong).error_code(),
            StatusCode::UNAVAILABLE);
  test::TestClient plaintext(addr, kToken);
  EXPECT_EQ(plaintext.stub->Ping(plaintext.ctx().get(), {}, &pong).error_code(),
            StatusCode::UNAVAILABLE);
  // A client that trusts another CA does not talk to this server.
  test::TempDir other;
  test::make_certificates(other.path());
  test::TestClient stranger(ClientOptions{addr, kToken, other.path() + "/ca.pem",
                                          other.path() + "/client.pem",
                                          other.path() + "/client.key"});
  EXPECT_EQ(stranger.stub->Ping(stranger.ctx().get(), {}, &pong).error_code(),
            StatusCode::UNAVAILABLE);
}

TEST(ServiceTls, ServerTlsWithoutClientCertificates) {
  test::TempDir dir;
  test::make_certificates(dir.path());
  const std::string d = dir.path() + "/";
  test::write_file(d + "tokens", kToken + "\n");
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.state_dir = d + "state";
  o.token_file = d + "tokens";
  o.tls_cert = d + "server.pem";
  o.tls_key = d + "server.key";
  CoordinatorServer server(o);
  test::TestClient tls(
      ClientOptions{"127.0.0.1:" + std::to_string(server.port()), kToken, d + "ca.pem", "", ""});
  pb::RegisterReply reply;
  grpc::Status s = tls.stub->Register(tls.ctx().get(), test::register_request("j", 0, 1), &reply);
  EXPECT_TRUE(s.ok()) << s.error_message();
  o.tls_client_ca = d + "ca.pem";
  o.tls_cert.clear();
  o.tls_key.clear();
  EXPECT_THROW(CoordinatorServer{o}, Error);  // mutual TLS needs the server's own certificate
}

}  // namespace
}  // namespace kiln::coord
