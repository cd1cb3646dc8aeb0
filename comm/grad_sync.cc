// The bucket plan and the overlapped gradient all-reduce.
#include "comm/grad_sync.h"

#include <algorithm>
#include <chrono>

#include "core/hash.h"
#include "core/ops.h"

namespace kiln {

std::vector<Bucket> plan_buckets(const ParamStore& store, size_t element_bytes,
                                 int64_t first_bucket_bytes, int64_t bucket_bytes) {
  KILN_CHECK(element_bytes > 0 && first_bucket_bytes > 0 && bucket_bytes > 0,
             "bucket sizes must be positive (first {} B, others {} B)", first_bucket_bytes,
             bucket_bytes);
  std::vector<int64_t> starts;  // parameter offsets, increasing
  for (const ParamInfo& p : store.infos()) starts.push_back(p.offset);
  const int64_t align = ParamStore::kAlignElems;
  const auto elem = static_cast<int64_t>(element_bytes);

  std::vector<Bucket> plan;
  int64_t end = store.total();
  while (end > 0) {
    const int64_t cap_bytes = plan.empty() ? first_bucket_bytes : bucket_bytes;
    const int64_t cap = std::max<int64_t>(1, cap_bytes / elem);
    const int64_t target = end - cap;
    int64_t begin = 0;
    if (target > 0) {
      // The highest parameter start at or below target (starts[0] == 0 <= target).
      const int64_t boundary = *(std::upper_bound(starts.begin(), starts.end(), target) - 1);
      begin = end - boundary < 2 * cap ? boundary : std::max(boundary, target / align * align);
    }
    plan.push_back(Bucket{begin, end});
    end = begin;
  }
  return plan;
}

std::string bucket_plan_hash(const std::vector<Bucket>& plan, size_t element_bytes) {
  std::string s = fmt::format("elem{};", element_bytes);
  for (const Bucket& b : plan) s += fmt::format("{}-{};", b.begin, b.end);
  return hash_hex(xxh3_64(s));
}

GradSync::GradSync(Communicator& comm, ParamStore& store, const GradSyncOptions& options)
    : comm_(comm), store_(store), options_(options) {
  KILN_CHECK(store.finalized(), "GradSync needs the parameter buffers laid out first");
  const size_t elem = dtype_size(store.grads().dtype());
  plan_ = plan_buckets(store, elem, options.first_bucket_bytes, options.bucket_bytes);
  plan_hash_ = bucket_plan_hash(plan_, elem);
  active_ = comm.world() > 1;
  if (active_ && options_.wire_dtype != store.grads().dtype()) {
    staging_ = Tensor::zeros(Shape{store.total()}, options_.wire_dtype, store.grads().device());
  }
  if (active_ && options_.overlap) {
    store_.set_grad_ready_hook([this](int64_t begin, int64_t) { on_ready(begin); });
  }
}

GradSync::~GradSync() {
  if (active_ && options_.overlap) store_.set_grad_ready_hook(nullptr);
}

void GradSync::begin_micro_batch(int64_t step, bool last) {
  step_ = step;
  armed_ = active_ && last;
  if (armed_) {
    KILN_CHECK(pending_.empty() && next_ == 0,
               "GradSync: a step began while {} buckets of the previous one were in flight",
               pending_.size());
    launched_in_backward_ = 0;
  }
}

void GradSync::on_ready(int64_t begin) {
  if (!armed_) return;  // an earlier micro-batch: its gradients are not complete yet
  // Ranges arrive in decreasing order, so everything at or above `begin` is final.
  while (next_ < plan_.size() && plan_[next_].begin >= begin) {
    launch(next_++);
    ++launched_in_backward_;
  }
}

Tensor GradSync::wire_view(int64_t begin, int64_t numel) {
  Tensor grads = store_.grads().view(begin, Shape{numel});
  if (!staging_.defined()) return grads;
  Tensor wire = staging_.view(begin, Shape{numel});
  grads.device().ops().cast(grads, wire);
  return wire;
}

void GradSync::launch(size_t i) {
  Tensor view = wire_view(plan_[i].begin, plan_[i].numel());
  // Background: issued while backward computes (the same on every rank: comm.overlap agrees).
  pending_.push_back(comm_.all_reduce_async(
      view, ReduceOp::sum, CollectiveTag{"gradients", step_, static_cast<int>(i), true}));
}

double GradSync::finish() {
  if (!active_) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  if (options_.overlap) {
    while (next_ < plan_.size()) launch(next_++);  // a model that left ranges unannounced
  } else {
    Tensor all = wire_view(0, store_.total());
    pending_.push_back(
        comm_.all_reduce_async(all, ReduceOp::sum, CollectiveTag{"gradients", step_, -1}));
  }
  for (auto& w : pending_) w->wait();
  if (staging_.defined()) {
    // The reduced sums replace this rank's gradients (ordered after the waits above).
    Tensor& grads = store_.grads();
    grads.device().ops().cast(staging_, grads);
  }
  pending_.clear();
  next_ = 0;
  armed_ = false;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace kiln
