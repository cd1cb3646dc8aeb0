// GradSync (DESIGN decisions 1 and 5): the gradient all-reduce of data-parallel training,
// overlapped with backward. The flat gradient buffer is cut into buckets in backward order
// (from its end towards its start); ParamStore's grad-ready hook says how far backward has got,
// and each bucket is all-reduced asynchronously as soon as all of its elements are final, while
// the lower layers still compute. Buckets are views of the gradient buffer itself: no copies.
//
// Averaging is folded into the loss: the trainer scales the loss gradient by 1/global_batch,
// so the all-reduce is a plain sum. With gradient accumulation only the last micro-batch's
// backward communicates. With overlap off, one all-reduce of the whole buffer runs after
// backward (for comparison).
//
// Thread safety: everything runs on the thread that runs backward (the hook fires there).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/param_store.h"

namespace kiln {

// [begin, end) in elements of the flat gradient buffer.
struct Bucket {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t numel() const { return end - begin; }
};

struct GradSyncOptions {
  int64_t bucket_bytes = 25 << 20;       // comm.bucket_mb
  int64_t first_bucket_bytes = 1 << 20;  // comm.first_bucket_mb: the last layers, sent first
  bool overlap = true;                   // comm.overlap
  // comm.grad_dtype: the dtype gradients travel in. f32 by default; bf16 halves the bytes
  // (each bucket is rounded into a bf16 staging copy, reduced, and added back as f32).
  DType wire_dtype = DType::f32;
};

// The bucket plan, in the order buckets become final (decreasing offsets); the buckets tile
// [0, store.total()). Walking down from the end, a bucket closes at the first parameter boundary
// at least its cap below its end, so that it becomes final together with a layer; a parameter
// that would make it reach twice the cap is cut instead (at 64-byte alignment), so messages stay
// between one and two caps except the last. The first bucket has its own, smaller cap so that
// communication starts early in backward.
std::vector<Bucket> plan_buckets(const ParamStore& store, size_t element_bytes,
                                 int64_t first_bucket_bytes, int64_t bucket_bytes);
// 64-bit hash of a plan (and the element size), as 16 hex digits: ranks compare it.
std::string bucket_plan_hash(const std::vector<Bucket>& plan, size_t element_bytes);

class GradSync {
 public:
  // Subscribes to `store`'s grad-ready hook when comm has more than one rank.
  GradSync(Communicator& comm, ParamStore& store, const GradSyncOptions& options);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  const std::vector<Bucket>& buckets() const { return plan_; }
  const std::string& plan_hash() const { return plan_hash_; }
  bool overlap() const { return options_.overlap; }

  // Before each micro-batch's backward. `last`: this backward completes the step's gradients,
  // so its buckets are reduced as they become final.
  void begin_micro_batch(int64_t step, bool last);
  // After the last backward: issues what is left and waits for every bucket. Returns the
  // seconds spent waiting here (the communication that backward did not hide).
  double finish();
  // Buckets of the last step issued from inside backward (0 with overlap off).
  int launched_in_backward() const { return launched_in_backward_; }

 private:
  void on_ready(int64_t begin);
  void launch(size_t i);
  // The tensor a bucket travels in: the gradient view itself, or its 16-bit staging copy.
  Tensor wire_view(int64_t begin, int64_t numel);

  Communicator& comm_;
  ParamStore& store_;
  GradSyncOptions options_;
  std::vector<Bucket> plan_;
  std::string plan_hash_;
  bool active_ = false;  // world > 1
  bool armed_ = false;   // the current backward is the step's last
  Tensor staging_;       // the wire-dtype copy of the gradients (undefined when they travel as is)
  int64_t step_ = -1;
  size_t next_ = 0;  // first bucket of the plan not issued yet
  int launched_in_backward_ = 0;
  std::vector<std::unique_ptr<Work>> pending_;
};

}  // namespace kiln
