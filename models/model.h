// A model: parameters in one ParamStore, and forward/backward of one micro-batch with its loss.
// Models are built by name through the registry (registry.h) and never talk to comm/: they only
// announce finished gradient ranges through ParamStore's hook.
#pragma once

#include <memory>
#include <string>

#include "core/config.h"
#include "core/param_store.h"
#include "models/layer.h"

namespace kiln {

// One micro-batch on the model's device: x (N, ...) inputs, y labels (N[, T]) as i32.
struct MicroBatch {
  Tensor x;
  Tensor y;
  int64_t first_sample = 0;  // global index, keys dropout
};

// Sums over a micro-batch (the caller divides): loss over predictions, correct predictions,
// number of predictions (samples for classifiers, tokens for language models).
struct LossSums {
  double loss = 0;
  double correct = 0;
  int64_t count = 0;
  LossSums& operator+=(const LossSums& o) {
    loss += o.loss;
    correct += o.correct;
    count += o.count;
    return *this;
  }
};

// What a model is built for: its input and the number of classes (vocabulary for text).
struct ModelSpec {
  Shape sample_shape;  // one input sample, e.g. (1, 28, 28)
  int64_t num_classes = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string name() const = 0;
  // Lays out the parameters on `device` in `dtype` and initialises them from `seed`.
  virtual void build(Device& device, DType dtype, uint64_t seed) = 0;
  // Forward, loss and backward: gradients accumulate into params().grads(); the loss gradient is
  // multiplied by grad_scale (1 / global batch: the step's gradient is the global mean).
  virtual LossSums forward_backward(const MicroBatch& batch, const ForwardContext& ctx,
                                    float grad_scale) = 0;
  // Forward and loss only (no dropout).
  virtual LossSums evaluate(const MicroBatch& batch) = 0;
  // Logits of the last forward, (N, classes) or (N, T, vocab).
  virtual const Tensor& logits() const = 0;

  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  // Parameter names and shapes, hashed: ranks compare it at start.
  std::string fingerprint() const;

 protected:
  ParamStore params_;
  Device* device_ = nullptr;
};

// A stack of layers followed by softmax cross-entropy over class logits.
class SequentialClassifier final : public Model {
 public:
  SequentialClassifier(std::string name, ModelSpec spec) : name_(std::move(name)), spec_(spec) {}
  void add(std::unique_ptr<Layer> layer) { layers_.push_back(std::move(layer)); }

  std::string name() const override { return name_; }
  void build(Device& device, DType dtype, uint64_t seed) override;
  LossSums forward_backward(const MicroBatch& batch, const ForwardContext& ctx,
                            float grad_scale) override;
  LossSums evaluate(const MicroBatch& batch) override;
  const Tensor& logits() const override { return *logits_; }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

 private:
  const Tensor& forward(const MicroBatch& batch, const ForwardContext& ctx);
  LossSums read_stats(int64_t n);

  std::string name_;
  ModelSpec spec_;
  std::vector<std::unique_ptr<Layer>> layers_;
  // Span names in the trace, one per layer: "forward layers.3 linear".
  std::vector<const char*> forward_names_, backward_names_;
  const Tensor* logits_ = nullptr;
  Tensor dlogits_store_, dlogits_, stats_, stats_host_;
};

}  // namespace kiln
