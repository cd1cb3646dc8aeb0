// GradSync without MPI: the bucket plan's shape (tiling, order, caps, cuts) and when buckets are
// issued during backward, observed through a communicator that records its calls.
#include "comm/grad_sync.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

// Records each all-reduce as (begin, numel) in elements of the gradient buffer it views.
class RecordingComm final : public Communicator {
 public:
  explicit RecordingComm(int world, const Tensor* grads) : world_(world), grads_(grads) {}
  struct Call {
    int64_t begin, numel;
    CollectiveTag tag;
  };
  struct RecordedWork final : public Work {
    explicit RecordedWork(int* waits) : waits_(waits) {}
    bool test() override { return true; }
    void wait() override { ++*waits_; }
    int* waits_;
  };
  std::vector<Call> calls;
  int waits = 0;

  std::string backend() const override { return "recording"; }
  int rank() const override { return 0; }
  int world() const override { return world_; }
  int local_rank() const override { return 0; }
  int local_world() const override { return world_; }
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp, const CollectiveTag& tag) override {
    const int64_t begin = (static_cast<char*>(t.raw()) - static_cast<char*>(grads_->raw())) / 4;
    calls.push_back(Call{begin, t.numel(), tag});
    return std::make_unique<RecordedWork>(&waits);
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor&, Tensor&, ReduceOp,
                                             const CollectiveTag&) override {
    ADD_FAILURE() << "GradSync should only all-reduce";
    return std::make_unique<RecordedWork>(&waits);
  }
  std::unique_ptr<Work> all_gather_async(const Tensor&, Tensor&, const CollectiveTag&) override {
    ADD_FAILURE() << "GradSync should only all-reduce";
    return std::make_unique<RecordedWork>(&waits);
  }
  std::unique_ptr<Work> broadcast_async(Tensor&, int, const CollectiveTag&) override {
    ADD_FAILURE() << "GradSync should only all-reduce";
    return std::make_unique<RecordedWork>(&waits);
  }
  std::unique_ptr<Work> barrier_async(const CollectiveTag&) override {
    return std::make_unique<RecordedWork>(&waits);
  }
  [[noreturn]] void abort(int code) noexcept override { std::abort(); }

 private:
  int world_;
  const Tensor* grads_;
};

// The parameters of the default CNN (models/classifiers.cc), in forward order.
void declare_cnn(ParamStore& s) {
  s.declare("conv1.weight", Shape{32, 1, 3, 3}, true);
  s.declare("conv1.bias", Shape{32}, false);
  s.declare("conv2.weight", Shape{64, 32, 3, 3}, true);
  s.declare("conv2.bias", Shape{64}, false);
  s.declare("fc1.weight", Shape{128, 3136}, true);
  s.declare("fc1.bias", Shape{128}, false);
  s.declare("fc2.weight", Shape{10, 128}, true);
  s.declare("fc2.bias", Shape{10}, false);
}

TEST(BucketPlan, CnnDefaultsGiveOneBucketFromFc1AndOneForTheConvs) {
  ParamStore s;
  declare_cnn(s);
  s.finalize(cpu_device(), DType::f32);
  // The first cap (1 MiB = 262144 floats) falls inside fc1.weight (401408 floats): the bucket
  // closes at fc1.weight's start, so it becomes final together with fc1's backward.
  std::vector<Bucket> plan = plan_buckets(s, 4, 1 << 20, 25 << 20);
  const int64_t fc1 = s.infos()[s.find("fc1.weight")].offset;
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].begin, fc1);
  EXPECT_EQ(plan[0].end, s.total());
  EXPECT_EQ(plan[1].begin, 0);
  EXPECT_EQ(plan[1].end, fc1);
}

TEST(BucketPlan, TilesTheBufferDownwardsWithinCaps) {
  ParamStore s;
  for (int i = 0; i < 40; ++i) s.declare("p" + std::to_string(i), Shape{(i * 37) % 301 + 1}, true);
  s.finalize(cpu_device(), DType::f32);
  std::vector<int64_t> starts;
  for (const ParamInfo& p : s.infos()) starts.push_back(p.offset);
  for (int64_t first : {4, 64, 400, 4096}) {
    for (int64_t cap : {64, 256, 1000, 1 << 20}) {
      if (first > cap) continue;
      std::vector<Bucket> plan = plan_buckets(s, 4, first, cap);
      ASSERT_FALSE(plan.empty());
      EXPECT_EQ(plan.front().end, s.total());
      EXPECT_EQ(plan.back().begin, 0);
      for (size_t i = 0; i < plan.size(); ++i) {
        const int64_t c = (i == 0 ? first : cap) / 4;
        const Bucket& b = plan[i];
        EXPECT_LT(b.begin, b.end);
        if (i + 1 < plan.size()) {
          EXPECT_EQ(plan[i + 1].end, b.begin) << "buckets must be contiguous, in backward order";
          EXPECT_GE(b.numel(), c) << "bucket " << i << " closed before its cap";
        }
        EXPECT_LT(b.numel(), std::max(2 * c, c + ParamStore::kAlignElems)) << "bucket " << i;
        const bool at_param = std::count(starts.begin(), starts.end(), b.begin) == 1;
        EXPECT_TRUE(at_param || b.begin % ParamStore::kAlignElems == 0) << b.begin;
      }
    }
  }
}

TEST(BucketPlan, LargeParameterIsCutIntoAlignedCapSizedPieces) {
  ParamStore s;
  s.declare("small", Shape{10}, false);
  s.declare("huge", Shape{10000}, true);
  s.finalize(cpu_device(), DType::f32);
  std::vector<Bucket> plan = plan_buckets(s, 4, 1024, 1024);  // 256 floats
  const int64_t huge = s.infos()[1].offset;
  // The cut leaves less than two caps above the parameter's start, then snaps to it.
  for (size_t i = 0; i + 1 < plan.size(); ++i) {
    if (plan[i].begin > huge) {
      EXPECT_EQ(plan[i].numel(), 256) << i;
      EXPECT_EQ(plan[i].begin % ParamStore::kAlignElems, 0);
    }
  }
  EXPECT_EQ(plan.back().begin, 0);
  EXPECT_EQ(plan.size(), 1 + (s.total() - huge) / 256);
}

TEST(BucketPlan, HashTellsPlansApart) {
  ParamStore s;
  declare_cnn(s);
  s.finalize(cpu_device(), DType::f32);
  const std::string a = bucket_plan_hash(plan_buckets(s, 4, 1 << 20, 25 << 20), 4);
  EXPECT_EQ(a, bucket_plan_hash(plan_buckets(s, 4, 1 << 20, 25 << 20), 4));
  EXPECT_NE(a, bucket_plan_hash(plan_buckets(s, 4, 1 << 16, 25 << 20), 4));
  EXPECT_NE(a, bucket_plan_hash(plan_buckets(s, 4, 1 << 20, 25 << 20), 2));
}

// Marks parameter ids final from the last down to `down_to`, as a backward pass does.
void mark_down_to(ParamStore& s, int& next, int down_to) {
  for (; next >= down_to; --next) s.mark_grad_ready(next);
}

TEST(GradSyncIssue, EachBucketIsIssuedWhenBackwardPassesItsStart) {
  ParamStore s;
  declare_cnn(s);
  s.finalize(cpu_device(), DType::f32);
  RecordingComm comm(2, &s.grads());
  GradSync sync(comm, s, GradSyncOptions{25 << 20, 1 << 20, true});
  ASSERT_EQ(sync.buckets().size(), 2u);
  sync.begin_micro_batch(7, true);
  s.begin_backward();
  int next = 7;
  mark_down_to(s, next, s.find("fc1.bias"));  // fc2 and fc1.bias final: not fc1.weight yet
  EXPECT_TRUE(comm.calls.empty());
  mark_down_to(s, next, s.find("fc1.weight"));
  ASSERT_EQ(comm.calls.size(), 1u) << "bucket 0 goes out while the convolutions still compute";
  EXPECT_EQ(comm.calls[0].begin, sync.buckets()[0].begin);
  EXPECT_EQ(comm.calls[0].numel, sync.buckets()[0].numel());
  EXPECT_EQ(comm.calls[0].tag.step, 7);
  EXPECT_EQ(comm.calls[0].tag.bucket, 0);
  mark_down_to(s, next, s.find("conv1.bias"));
  EXPECT_EQ(comm.calls.size(), 1u);
  mark_down_to(s, next, 0);
  ASSERT_EQ(comm.calls.size(), 2u);
  EXPECT_EQ(comm.calls[1].begin, 0);
  EXPECT_EQ(comm.calls[1].tag.bucket, 1);
  EXPECT_EQ(sync.launched_in_backward(), 2);
  EXPECT_EQ(comm.waits, 0) << "nothing waits inside backward";
  sync.finish();
  EXPECT_EQ(comm.waits, 2);
  EXPECT_EQ(comm.calls.size(), 2u);
}

TEST(GradSyncIssue, EarlierMicroBatchesAndOverlapOffWaitForFinish) {
  ParamStore s;
  declare_cnn(s);
  s.finalize(cpu_device(), DType::f32);
  RecordingComm comm(2, &s.grads());
  {
    GradSync sync(comm, s, GradSyncOptions{25 << 20, 1 << 20, true});
    sync.begin_micro_batch(0, false);
    s.begin_backward();
    int next = 7;
    mark_down_to(s, next, 0);
    EXPECT_TRUE(comm.calls.empty()) << "a non-final micro-batch must not communicate";
  }
  GradSync off(comm, s, GradSyncOptions{25 << 20, 1 << 20, false});
  off.begin_micro_batch(0, true);
  s.begin_backward();
  int next = 7;
  mark_down_to(s, next, 0);
  EXPECT_TRUE(comm.calls.empty());
  off.finish();
  ASSERT_EQ(comm.calls.size(), 1u) << "overlap off: one all-reduce of the whole buffer";
  EXPECT_EQ(comm.calls[0].begin, 0);
  EXPECT_EQ(comm.calls[0].numel, s.total());
}

TEST(GradSyncIssue, WorldOfOneNeverCommunicates) {
  ParamStore s;
  declare_cnn(s);
  s.finalize(cpu_device(), DType::f32);
  RecordingComm comm(1, &s.grads());
  GradSync sync(comm, s, GradSyncOptions{});
  sync.begin_micro_batch(0, true);
  s.begin_backward();
  int next = 7;
  mark_down_to(s, next, 0);
  EXPECT_EQ(sync.finish(), 0.0);
  EXPECT_TRUE(comm.calls.empty());
}

}  // namespace
}  // namespace kiln
