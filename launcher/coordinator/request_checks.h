// Field-by-field checks of each request, run before a request reaches the registry, so that the
// registry sees well-formed values only. Each returns OK or the status to answer with.
#pragma once

#include <grpcpp/support/status.h>

#include "launcher/coordinator/kiln.pb.h"

namespace kiln::coord {

namespace pb = ::kiln::coord::v1;

grpc::Status check(const pb::RegisterRequest& r);
grpc::Status check(const pb::HeartbeatRequest& r);
grpc::Status check(const pb::ReportMetricsRequest& r);
grpc::Status check(const pb::CommitCheckpointRequest& r);
grpc::Status check(const pb::KvPutRequest& r);
grpc::Status check(const pb::KvGetRequest& r);
grpc::Status check(const pb::StartGenerationRequest& r);
grpc::Status check(const pb::RecordEventRequest& r);
grpc::Status check(const pb::SetActionRequest& r);
grpc::Status check(const pb::GetJobRequest& r);

}  // namespace kiln::coord
