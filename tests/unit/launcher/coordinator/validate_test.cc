// Field checks: job ids, ranks, and checkpoint paths that must stay inside the job's root.
#include "launcher/coordinator/validate.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln::coord {
namespace {

using grpc::StatusCode;

StatusCode resolve(const std::string& root, const std::string& path, std::string* out) {
  return resolve_checkpoint_path(root, path, out).error_code();
}

TEST(Validate, CheckpointPathsResolveInsideTheRoot) {
  std::string out;
  EXPECT_EQ(resolve("/runs/a/ckpt", "step-00000100", &out), StatusCode::OK);
  EXPECT_EQ(out, "/runs/a/ckpt/step-00000100");
  EXPECT_EQ(resolve("/runs/a/ckpt", "./step-1/", &out), StatusCode::OK);
  EXPECT_EQ(out, "/runs/a/ckpt/step-1");
  EXPECT_EQ(resolve("/runs/a/ckpt/", "/runs/a/ckpt/step-2", &out), StatusCode::OK);
  EXPECT_EQ(out, "/runs/a/ckpt/step-2");
  EXPECT_EQ(resolve("/", "step-3", &out), StatusCode::OK);
  EXPECT_EQ(out, "/step-3");
}

TEST(Validate, CheckpointPathsThatLeaveTheRootAreRefused) {
  std::string out = "unchanged";
  const std::string root = "/runs/a/ckpt";
  EXPECT_EQ(resolve(root, "../../etc/passwd", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, "step-1/../../other", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, "step-1/..", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, "/etc/passwd", &out), StatusCode::INVALID_ARGUMENT);
  // A sibling whose name starts like the root is outside it.
  EXPECT_EQ(resolve(root, "/runs/a/ckpt-evil/step-1", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, "/runs/a/ckpt", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, ".", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, "", &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, std::string("step\0x", 6), &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve(root, std::string(5000, 'a'), &out), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resolve("", "step-1", &out), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(out, "unchanged");
}

TEST(Validate, CheckpointRootsAreAbsoluteAndNormal) {
  EXPECT_TRUE(check_checkpoint_root("").ok());
  EXPECT_TRUE(check_checkpoint_root("/runs/x/ckpt").ok());
  EXPECT_EQ(check_checkpoint_root("runs/x").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_checkpoint_root("/runs/../etc").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_checkpoint_root("/runs/./x").error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST(Validate, RanksWorldsAndIds) {
  EXPECT_TRUE(check_rank(0, 1).ok());
  EXPECT_TRUE(check_rank(3, 4).ok());
  EXPECT_EQ(check_rank(4, 4).error_code(), StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(check_rank(-1, 4).error_code(), StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(check_rank(0, 0).error_code(), StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(check_rank(0, kMaxWorld + 1).error_code(), StatusCode::OUT_OF_RANGE);
  EXPECT_TRUE(check_job_id("mnist-ddp_2.a").ok());
  EXPECT_EQ(check_job_id("").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_job_id("a/b").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_job_id(std::string(65, 'a')).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_finite(std::nan(""), "loss").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_text("a\nb", "host", 10, false).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_digest("xxh3:0123abcd", "c").error_code(), StatusCode::OK);
  EXPECT_EQ(check_digest("a b", "c").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(check_kind("host_blacklisted").error_code(), StatusCode::OK);
  EXPECT_EQ(check_kind("Bad Kind").error_code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace kiln::coord
