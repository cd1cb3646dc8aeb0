// Layers with explicit forward and backward (DESIGN decision 2). A layer owns its output and
// input-gradient buffers, sized on first use and reused (no allocation per step), and reads its
// parameters as views into the model's flat buffers. backward() accumulates parameter gradients
// and marks them final through the ParamStore, which is how gradient buckets learn they can go.
#pragma once

#include <cstdint>
#include <string>

#include "core/ops.h"
#include "core/param_store.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace kiln {

// A buffer of `shape` inside `storage`, regrown only when a larger shape is asked for.
Tensor reuse_buffer(Tensor& storage, const Shape& shape, DType dtype, Device& device);

// What a forward pass needs to know about the step it belongs to.
struct ForwardContext {
  bool training = true;
  uint64_t seed = 0;          // train.seed: keys dropout
  int64_t step = 0;           // optimizer step
  int64_t first_sample = 0;   // global index of the micro-batch's first sample
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string kind() const = 0;
  // Declares parameters named `prefix`.weight etc. Called once, in forward order.
  virtual void declare(ParamStore& store, const std::string& prefix) {}
  // Initialises this layer's parameters (after the store is laid out).
  virtual void init(ParamStore& store, uint64_t seed) {}
  // Output shape for an input shape (both with the batch dimension first).
  virtual Shape output_shape(const Shape& in) const = 0;
  // y = f(x). The returned tensor is owned by the layer and valid until its next forward.
  // x must stay valid until backward (it is the previous layer's output).
  virtual const Tensor& forward(const Tensor& x, const ForwardContext& ctx) = 0;
  // Given dL/dy, accumulates parameter gradients, marks them ready, and returns dL/dx (owned by
  // the layer), or an undefined tensor when need_dx is false.
  virtual const Tensor& backward(const Tensor& dy, bool need_dx) = 0;

  void bind(ParamStore* store, Device* device) {
    store_ = store;
    device_ = device;
  }

 protected:
  Ops& ops() { return device_->ops(); }
  Tensor buffer(Tensor& storage, const Shape& shape, DType dtype) {
    return reuse_buffer(storage, shape, dtype, *device_);
  }

  ParamStore* store_ = nullptr;
  Device* device_ = nullptr;
};

// PyTorch's default initialisation of Linear and Conv2d: weight and bias uniform in
// +-1/sqrt(fan_in), drawn from a stream keyed by the parameter's name (layout-independent).
void init_uniform_fan_in(ParamStore& store, int id, int64_t fan_in, uint64_t seed);
// Normal(0, std) values from a stream keyed by the parameter's name (GPT-2's initialisation).
void init_normal(ParamStore& store, int id, double std, uint64_t seed);
// Every element set to `value` (biases 0, layer-norm gains 1).
void init_constant(ParamStore& store, int id, double value);

class Linear final : public Layer {
 public:
  Linear(int64_t in, int64_t out) : in_(in), out_(out) {}
  std::string kind() const override { return "linear"; }
  void declare(ParamStore& store, const std::string& prefix) override;
  void init(ParamStore& store, uint64_t seed) override;
  Shape output_shape(const Shape& in) const override { return Shape{in[0], out_}; }
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  int64_t in_, out_;
  int w_ = -1, b_ = -1;
  Tensor x_, y_store_, y_, dx_store_, dx_;
};

class Conv2d final : public Layer {
 public:
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t pad)
      : in_(in_ch), out_(out_ch), k_(kernel), p_{stride, pad} {}
  std::string kind() const override { return "conv2d"; }
  void declare(ParamStore& store, const std::string& prefix) override;
  void init(ParamStore& store, uint64_t seed) override;
  Shape output_shape(const Shape& in) const override;
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  int64_t in_, out_, k_;
  Conv2dParams p_;
  int w_ = -1, b_ = -1;
  Tensor x_, y_store_, y_, dx_store_, dx_;
};

class MaxPool2d final : public Layer {
 public:
  MaxPool2d(int64_t kernel, int64_t stride) : k_(kernel), s_(stride) {}
  std::string kind() const override { return "maxpool2d"; }
  Shape output_shape(const Shape& in) const override;
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  int64_t k_, s_;
  Shape in_shape_;
  Tensor y_store_, y_, arg_store_, arg_, dx_store_, dx_;
};

class ReLU final : public Layer {
 public:
  std::string kind() const override { return "relu"; }
  Shape output_shape(const Shape& in) const override { return in; }
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  Tensor y_store_, y_, dx_store_, dx_;
};

class GELU final : public Layer {
 public:
  std::string kind() const override { return "gelu"; }
  Shape output_shape(const Shape& in) const override { return in; }
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  Tensor x_, y_store_, y_, dx_store_, dx_;
};

// Inverted dropout; the identity when not training or p == 0. `layer_id` keys its masks.
class Dropout final : public Layer {
 public:
  Dropout(float p, uint32_t layer_id) : p_(p), layer_id_(layer_id) {}
  std::string kind() const override { return "dropout"; }
  Shape output_shape(const Shape& in) const override { return in; }
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  float p_;
  uint32_t layer_id_;
  bool active_ = false;
  Tensor x_, y_store_, y_, mask_store_, mask_, dx_store_, dx_;
};

// (N, ...) -> (N, prod(...)): a view, no copy.
class Flatten final : public Layer {
 public:
  std::string kind() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override;
  const Tensor& forward(const Tensor& x, const ForwardContext& ctx) override;
  const Tensor& backward(const Tensor& dy, bool need_dx) override;

 private:
  Shape in_shape_;
  Tensor y_, dx_;
};

}  // namespace kiln
