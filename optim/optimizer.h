// Optimizers over the flat buffers: one fused pass per contiguous run of parameters that share a
// weight-decay setting (biases are not decayed). The state buffers share the parameters' layout,
// so checkpoints and ZeRO shards can slice them by offset.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/param_store.h"

namespace kiln {

// A contiguous run of the flat buffers with one weight-decay setting.
struct ParamSegment {
  int64_t begin = 0, end = 0;
  bool decay = true;
};
std::vector<ParamSegment> param_segments(const ParamStore& store);

struct NamedState {
  std::string name;  // "exp_avg", "exp_avg_sq", "momentum"
  Tensor* tensor;    // flat, the parameters' layout
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // One update of every parameter from its gradient, at learning rate lr, with the gradients
  // first multiplied by grad_scale (clipping).
  virtual void step(ParamStore& store, double lr, float grad_scale) = 0;
  virtual std::vector<NamedState> state() = 0;
  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t n) { steps_ = n; }

 protected:
  int64_t steps_ = 0;
};

std::unique_ptr<Optimizer> create_optimizer(const OptimConfig& cfg, ParamStore& store);

// Learning rate at 0-based `step` of `total`: linear warmup to optim.lr over warmup_steps, then
// cosine or linear decay to lr * min_lr_ratio at the last step, or constant.
double learning_rate(const OptimConfig& cfg, int64_t step, int64_t total);

// Factor that brings a gradient of global norm `norm` down to `clip_norm` (1 when under it or
// when clipping is off). Computed as PyTorch's clip_grad_norm_ does.
double clip_factor(double norm, double clip_norm);

}  // namespace kiln
