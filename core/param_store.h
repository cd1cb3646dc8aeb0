// Flat parameter and gradient buffers (DESIGN decision 1). A model declares its parameters in
// forward order; finalize() lays them out in one contiguous, 64-byte-aligned buffer, and the
// gradients in a second buffer of the same layout. Layers hold views. Because backward runs in
// reverse, the gradient buffer becomes final from the end towards the start, so any suffix of it
// is a contiguous range ready to be reduced.
//
// Thread safety: declare/finalize on one thread before training; mark_grad_ready is called by
// the thread running backward, and the hook runs on that thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/grad_hook.h"
#include "core/tensor.h"

namespace kiln {

struct ParamInfo {
  std::string name;   // stable name, e.g. "layers.0.weight"; used by checkpoints
  Shape shape;
  int64_t offset = 0;  // element offset into the flat buffers
  int64_t numel = 0;
  bool decay = true;   // weight decay applies (weights yes; biases and norms no)
};

class ParamStore {
 public:
  static constexpr int64_t kAlignElems = 16;  // 64 bytes of f32

  // Declares a parameter; returns its id. Only before finalize().
  int declare(const std::string& name, const Shape& shape, bool decay);
  // Allocates params and grads (zeroed) on `device` in `dtype`.
  void finalize(Device& device, DType dtype);

  // Mixed precision (DESIGN decision 1 still holds: one flat buffer per kind). The parameters and
  // gradients stay in the master dtype (f32); layers compute with a copy in `dtype` (bf16 or
  // f16), refreshed from the master weights after every update. With the master dtype, the
  // compute copy is the parameters themselves.
  void set_compute_dtype(DType dtype);
  DType compute_dtype() const { return cparams_.defined() ? cparams_.dtype() : params_.dtype(); }
  Tensor compute_param(int id) const;
  // cparams = params rounded to the compute dtype (on the parameters' device, compute stream).
  void refresh_compute_params();
  bool finalized() const { return params_.defined(); }

  const std::vector<ParamInfo>& infos() const { return infos_; }
  int64_t total() const { return total_; }        // elements, padding included
  int64_t count() const;                           // elements, padding excluded
  Tensor& params() { return params_; }             // flat, (total)
  Tensor& grads() { return grads_; }               // flat, (total)
  Tensor param(int id) const;                      // view with the declared shape
  Tensor grad(int id) const;
  int find(const std::string& name) const;         // -1 when absent

  // Backward bookkeeping: reset before each backward; models mark a parameter once its gradient
  // is final for the micro-batch. The hook fires for each newly final suffix [begin, end).
  void begin_backward();
  void mark_grad_ready(int id);
  void set_grad_ready_hook(GradReadyHook hook) { hook_ = std::move(hook); }
  // Range covered by parameter id including its padding: [offset, next offset).
  int64_t span_end(int id) const;

 private:
  std::vector<ParamInfo> infos_;
  int64_t total_ = 0;
  Tensor params_, grads_;
  Tensor cparams_;  // the compute copy; undefined when computing in the master dtype
  std::vector<uint8_t> ready_;
  int next_unready_ = -1;  // highest id whose gradient is not final yet
  GradReadyHook hook_;
};

}  // namespace kiln
