// Shared layer helpers: reusable buffers and fan-in initialisation.
#include "models/layer.h"

#include <cmath>
#include <vector>

#include "core/hash.h"

namespace kiln {

Tensor reuse_buffer(Tensor& storage, const Shape& shape, DType dtype, Device& device) {
  if (!storage.defined() || storage.dtype() != dtype || storage.numel() < shape.numel()) {
    storage = Tensor::empty(Shape{shape.numel()}, dtype, device);
  }
  return storage.view(0, shape);
}

void init_uniform_fan_in(ParamStore& store, int id, int64_t fan_in, uint64_t seed) {
  const ParamInfo& info = store.infos().at(id);
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(1, fan_in)));
  Rng rng(seed, xxh3_64(info.name));
  Tensor p = store.param(id);
  if (p.dtype() == DType::f64) {
    std::vector<double> v(static_cast<size_t>(info.numel));
    for (double& x : v) x = rng.uniform(-bound, bound);
    p.copy_from(Tensor::from_vector(v, info.shape));
  } else {
    std::vector<float> v(static_cast<size_t>(info.numel));
    for (float& x : v) x = static_cast<float>(rng.uniform(-bound, bound));
    p.copy_from(Tensor::from_vector(v, info.shape));
  }
}

namespace {

// Fills parameter `id` with values from `draw`, in its dtype.
template <typename Draw>
void fill_param(ParamStore& store, int id, Draw&& draw) {
  const ParamInfo& info = store.infos().at(id);
  Tensor p = store.param(id);
  if (p.dtype() == DType::f64) {
    std::vector<double> v(static_cast<size_t>(info.numel));
    for (double& x : v) x = draw();
    p.copy_from(Tensor::from_vector(v, info.shape));
  } else {
    std::vector<float> v(static_cast<size_t>(info.numel));
    for (float& x : v) x = static_cast<float>(draw());
    p.copy_from(Tensor::from_vector(v, info.shape));
  }
}

}  // namespace

void init_normal(ParamStore& store, int id, double std, uint64_t seed) {
  Rng rng(seed, xxh3_64(store.infos().at(id).name));
  fill_param(store, id, [&] { return std * rng.normal(); });
}

void init_constant(ParamStore& store, int id, double value) {
  fill_param(store, id, [&] { return value; });
}

// ---- Linear ---------------------------------------------------------------------------------

void Linear::declare(ParamStore& store, const std::string& prefix) {
  w_ = store.declare(prefix + ".weight", Shape{out_, in_}, true);
  b_ = store.declare(prefix + ".bias", Shape{out_}, false);
}

void Linear::init(ParamStore& store, uint64_t seed) {
  init_uniform_fan_in(store, w_, in_, seed);
  init_uniform_fan_in(store, b_, in_, seed);
}

const Tensor& Linear::forward(const Tensor& x, const ForwardContext&) {
  KILN_CHECK(x.ndim() == 2 && x.dim(1) == in_, "linear layer expects (N, {}), got {}", in_,
             x.shape().str());
  x_ = x;
  y_ = buffer(y_store_, Shape{x.dim(0), out_}, x.dtype());
  ops().linear_forward(x, store_->compute_param(w_), store_->compute_param(b_), y_);
  return y_;
}

const Tensor& Linear::backward(const Tensor& dy, bool need_dx) {
  Tensor dw = store_->grad(w_), db = store_->grad(b_);
  if (need_dx) dx_ = buffer(dx_store_, x_.shape(), x_.dtype());
  ops().linear_backward(x_, store_->compute_param(w_), dy, need_dx ? &dx_ : nullptr, dw, db);
  store_->mark_grad_ready(b_);
  store_->mark_grad_ready(w_);
  static const Tensor kNone;
  return need_dx ? dx_ : kNone;
}

// ---- Conv2d ---------------------------------------------------------------------------------

void Conv2d::declare(ParamStore& store, const std::string& prefix) {
  w_ = store.declare(prefix + ".weight", Shape{out_, in_, k_, k_}, true);
  b_ = store.declare(prefix + ".bias", Shape{out_}, false);
}

void Conv2d::init(ParamStore& store, uint64_t seed) {
  init_uniform_fan_in(store, w_, in_ * k_ * k_, seed);
  init_uniform_fan_in(store, b_, in_ * k_ * k_, seed);
}

Shape Conv2d::output_shape(const Shape& in) const {
  return Shape{in[0], out_, (in[2] + 2 * p_.pad - k_) / p_.stride + 1,
               (in[3] + 2 * p_.pad - k_) / p_.stride + 1};
}

const Tensor& Conv2d::forward(const Tensor& x, const ForwardContext&) {
  KILN_CHECK(x.ndim() == 4 && x.dim(1) == in_, "conv2d layer expects (N, {}, H, W), got {}", in_,
             x.shape().str());
  x_ = x;
  y_ = buffer(y_store_, output_shape(x.shape()), x.dtype());
  ops().conv2d_forward(x, store_->compute_param(w_), store_->compute_param(b_), y_, p_);
  return y_;
}

const Tensor& Conv2d::backward(const Tensor& dy, bool need_dx) {
  Tensor dw = store_->grad(w_), db = store_->grad(b_);
  if (need_dx) dx_ = buffer(dx_store_, x_.shape(), x_.dtype());
  ops().conv2d_backward(x_, store_->compute_param(w_), dy, need_dx ? &dx_ : nullptr, dw, db, p_);
  store_->mark_grad_ready(b_);
  store_->mark_grad_ready(w_);
  static const Tensor kNone;
  return need_dx ? dx_ : kNone;
}

// ---- MaxPool2d ------------------------------------------------------------------------------

Shape MaxPool2d::output_shape(const Shape& in) const {
  return Shape{in[0], in[1], (in[2] - k_) / s_ + 1, (in[3] - k_) / s_ + 1};
}

const Tensor& MaxPool2d::forward(const Tensor& x, const ForwardContext&) {
  in_shape_ = x.shape();
  Shape out = output_shape(x.shape());
  y_ = buffer(y_store_, out, x.dtype());
  arg_ = buffer(arg_store_, out, DType::i32);
  ops().maxpool2d_forward(x, y_, arg_, k_, s_);
  return y_;
}

const Tensor& MaxPool2d::backward(const Tensor& dy, bool need_dx) {
  static const Tensor kNone;
  if (!need_dx) return kNone;
  dx_ = buffer(dx_store_, in_shape_, dy.dtype());
  ops().maxpool2d_backward(dy, arg_, dx_);
  return dx_;
}

// ---- activations, dropout, flatten ----------------------------------------------------------

const Tensor& ReLU::forward(const Tensor& x, const ForwardContext&) {
  y_ = buffer(y_store_, x.shape(), x.dtype());
  ops().relu_forward(x, y_);
  return y_;
}

const Tensor& ReLU::backward(const Tensor& dy, bool need_dx) {
  static const Tensor kNone;
  if (!need_dx) return kNone;
  dx_ = buffer(dx_store_, dy.shape(), dy.dtype());
  ops().relu_backward(y_, dy, dx_);
  return dx_;
}

const Tensor& GELU::forward(const Tensor& x, const ForwardContext&) {
  x_ = x;
  y_ = buffer(y_store_, x.shape(), x.dtype());
  ops().gelu_forward(x, y_);
  return y_;
}

const Tensor& GELU::backward(const Tensor& dy, bool need_dx) {
  static const Tensor kNone;
  if (!need_dx) return kNone;
  dx_ = buffer(dx_store_, dy.shape(), dy.dtype());
  ops().gelu_backward(x_, dy, dx_);
  return dx_;
}

const Tensor& Dropout::forward(const Tensor& x, const ForwardContext& ctx) {
  active_ = ctx.training && p_ > 0.0f;
  if (!active_) {
    y_ = x;
    return y_;
  }
  y_ = buffer(y_store_, x.shape(), x.dtype());
  mask_ = buffer(mask_store_, x.shape(), DType::u8);
  DropoutKey key{static_cast<uint64_t>(ctx.seed), static_cast<uint64_t>(ctx.step), layer_id_,
                 ctx.first_sample};
  ops().dropout_forward(x, y_, mask_, p_, key);
  return y_;
}

const Tensor& Dropout::backward(const Tensor& dy, bool need_dx) {
  static const Tensor kNone;
  if (!need_dx) return kNone;
  if (!active_) {
    dx_ = dy;
    return dx_;
  }
  dx_ = buffer(dx_store_, dy.shape(), dy.dtype());
  ops().dropout_backward(dy, mask_, dx_, p_);
  return dx_;
}

Shape Flatten::output_shape(const Shape& in) const {
  return Shape{in[0], in[0] ? in.numel() / in[0] : 0};
}

const Tensor& Flatten::forward(const Tensor& x, const ForwardContext&) {
  in_shape_ = x.shape();
  y_ = x.reshape(output_shape(x.shape()));
  return y_;
}

const Tensor& Flatten::backward(const Tensor& dy, bool need_dx) {
  static const Tensor kNone;
  if (!need_dx) return kNone;
  dx_ = dy.reshape(in_shape_);
  return dx_;
}

}  // namespace kiln
