// Per-request field checks: ids, ranges, enums, text and numbers.
#include "launcher/coordinator/request_checks.h"

#include <fmt/format.h>

#include "launcher/coordinator/validate.h"

namespace kiln::coord {

namespace {

constexpr size_t kMaxHost = 255, kMaxReason = 1024, kMaxKey = 256, kMaxValue = 64 * 1024;
constexpr size_t kMaxPoints = 1024;
constexpr uint32_t kMaxWaitMs = 600000;

// Runs checks in order and stops at the first failure.
template <typename... Checks>
grpc::Status first_failure(Checks&&... checks) {
  grpc::Status result;
  ((result.ok() ? (result = checks(), 0) : 0), ...);
  return result;
}

grpc::Status bad_enum(const char* field, int v) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      fmt::format("{} = {} is not one of the values kiln.proto defines", field, v));
}

// Worker calls name (job, generation, rank); world is known from the registration.
grpc::Status check_member(const std::string& job, int64_t generation, int rank) {
  return first_failure([&] { return check_job_id(job); },
                       [&] { return check_non_negative(generation, "generation"); },
                       [&] { return check_non_negative(rank, "rank"); });
}

}  // namespace

grpc::Status check(const pb::RegisterRequest& r) {
  return first_failure([&] { return check_job_id(r.job()); },
                       [&] {
                         return r.has_generation()
                                    ? check_non_negative(r.generation(), "generation")
                                    : grpc::Status::OK;
                       },
                       [&] { return check_rank(r.rank(), r.world()); },
                       [&] { return check_text(r.host(), "host", kMaxHost, false); },
                       [&] {
                         return r.pid() > 0
                                    ? grpc::Status::OK
                                    : grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                                   fmt::format("pid {} is not positive", r.pid()));
                       },
                       [&] { return check_digest(r.config_hash(), "config_hash"); },
                       [&] { return check_checkpoint_root(r.checkpoint_root()); });
}

grpc::Status check(const pb::HeartbeatRequest& r) {
  return first_failure(
      [&] { return check_member(r.job(), r.generation(), r.rank()); },
      [&] { return r.step() >= -1 ? grpc::Status::OK : check_non_negative(r.step(), "step"); },
      [&] {
        return pb::Phase_IsValid(r.phase()) ? grpc::Status::OK : bad_enum("phase", r.phase());
      },
      [&] { return check_finite(r.samples_per_s(), "samples_per_s"); },
      [&] { return check_finite(r.loss(), "loss"); });
}

grpc::Status check(const pb::ReportMetricsRequest& r) {
  grpc::Status s = check_member(r.job(), r.generation(), r.rank());
  if (!s.ok()) return s;
  if (static_cast<size_t>(r.points_size()) > kMaxPoints) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        fmt::format("{} metric points in one batch, at most {}", r.points_size(), kMaxPoints));
  }
  for (const pb::MetricPoint& p : r.points()) {
    s = first_failure([&] { return check_non_negative(p.step(), "points.step"); },
                      [&] { return check_finite(p.loss(), "points.loss"); },
                      [&] { return check_finite(p.samples_per_s(), "points.samples_per_s"); },
                      [&] { return check_finite(p.step_ms(), "points.step_ms"); },
                      [&] { return check_finite(p.time(), "points.time"); });
    if (!s.ok()) return s;
  }
  return grpc::Status::OK;
}

grpc::Status check(const pb::CommitCheckpointRequest& r) {
  return first_failure([&] { return check_member(r.job(), r.generation(), r.rank()); },
                       [&] { return check_non_negative(r.step(), "step"); },
                       [&] { return check_text(r.path(), "path", kMaxPath, false); },
                       [&] { return check_digest(r.manifest_checksum(), "manifest_checksum"); },
                       [&] { return check_finite(r.duration_s(), "duration_s"); },
                       [&] {
                         return r.duration_s() >= 0 ? grpc::Status::OK
                                                    : grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                                                   "duration_s is negative");
                       });
}

grpc::Status check(const pb::KvPutRequest& r) {
  return first_failure([&] { return check_job_id(r.job()); },
                       [&] { return check_text(r.key(), "key", kMaxKey, false); },
                       [&] {
                         return r.value().size() <= kMaxValue
                                    ? grpc::Status::OK
                                    : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                   fmt::format("value is {} bytes, at most {}",
                                                               r.value().size(), kMaxValue));
                       });
}

grpc::Status check(const pb::KvGetRequest& r) {
  return first_failure(
      [&] { return check_job_id(r.job()); },
      [&] { return check_text(r.key(), "key", kMaxKey, false); },
      [&] {
        return r.wait_ms() <= kMaxWaitMs
                   ? grpc::Status::OK
                   : grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                  fmt::format("wait_ms {} exceeds {}", r.wait_ms(), kMaxWaitMs));
      });
}

grpc::Status check(const pb::StartGenerationRequest& r) {
  return first_failure([&] { return check_job_id(r.job()); },
                       [&] {
                         return r.has_generation()
                                    ? check_non_negative(r.generation(), "generation")
                                    : grpc::Status::OK;
                       },
                       [&] { return check_rank(0, r.world()); },
                       [&] {
                         return pb::Cause_IsValid(r.cause()) && r.cause() != pb::CAUSE_UNSPECIFIED
                                    ? grpc::Status::OK
                                    : bad_enum("cause", r.cause());
                       },
                       [&] { return check_text(r.reason(), "reason", kMaxReason, true); },
                       [&] { return check_checkpoint_root(r.checkpoint_root()); });
}

grpc::Status check(const pb::RecordEventRequest& r) {
  return first_failure([&] { return check_job_id(r.job()); }, [&] { return check_kind(r.kind()); },
                       [&] { return check_text(r.message(), "message", kMaxReason, true); });
}

grpc::Status check(const pb::SetActionRequest& r) {
  return first_failure([&] { return check_job_id(r.job()); },
                       [&] {
                         return pb::Action_IsValid(r.action()) ? grpc::Status::OK
                                                               : bad_enum("action", r.action());
                       },
                       [&] { return check_text(r.reason(), "reason", kMaxReason, true); });
}

grpc::Status check(const pb::GetJobRequest& r) {
  return first_failure([&] { return check_job_id(r.job()); },
                       [&] {
                         return r.max_events() <= 1000
                                    ? grpc::Status::OK
                                    : grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                                   "max_events exceeds 1000");
                       });
}

}  // namespace kiln::coord
