// Sequential classifiers: forward through the layers, fused softmax cross-entropy, backward.
#include "models/model.h"

#include "core/hash.h"
#include "core/trace.h"

namespace kiln {

std::string Model::fingerprint() const {
  std::string s;
  for (const ParamInfo& p : params_.infos()) s += p.name + p.shape.str() + ";";
  return fmt::format("{}:{}params:{}", name(), params_.count(), hash_hex(xxh3_64(s)));
}

void SequentialClassifier::build(Device& device, DType dtype, uint64_t seed) {
  device_ = &device;
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->bind(&params_, &device);
    layers_[i]->declare(params_, fmt::format("layers.{}", i));
    forward_names_.push_back(
        trace::intern(fmt::format("forward layers.{} {}", i, layers_[i]->kind())));
    backward_names_.push_back(
        trace::intern(fmt::format("backward layers.{} {}", i, layers_[i]->kind())));
  }
  params_.finalize(device, dtype);
  for (auto& l : layers_) l->init(params_, seed);
  // Check the stack fits together before the first batch does.
  Shape s = spec_.sample_shape;
  std::vector<int64_t> dims = s.to_vector();
  dims.insert(dims.begin(), 1);
  Shape shape(dims);
  for (auto& l : layers_) shape = l->output_shape(shape);
  KILN_CHECK(shape.ndim() == 2 && shape[1] == spec_.num_classes,
             "model {} ends in {} but the dataset has {} classes", name_, shape.str(),
             spec_.num_classes);
  stats_ = Tensor::zeros(Shape{2}, DType::f64, device);
}

const Tensor& SequentialClassifier::forward(const MicroBatch& batch, const ForwardContext& ctx) {
  trace::Span span("forward", "compute");
  const Tensor* x = &batch.x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    trace::Span layer(forward_names_[i], "layer");
    layer.arg("layer", static_cast<int64_t>(i));
    x = &layers_[i]->forward(*x, ctx);
  }
  logits_ = x;
  return *x;
}

LossSums SequentialClassifier::read_stats(int64_t n) {
  std::vector<double> s = stats_.to_vector<double>();
  return LossSums{s[0], s[1], n};
}

LossSums SequentialClassifier::forward_backward(const MicroBatch& batch,
                                                const ForwardContext& ctx, float grad_scale) {
  const Tensor& logits = forward(batch, ctx);
  dlogits_ = reuse_buffer(dlogits_store_, logits.shape(), logits.dtype(), *device_);
  {
    trace::Span span("loss", "compute");
    device_->ops().softmax_xent(logits, batch.y, &dlogits_, grad_scale, stats_);
  }
  params_.begin_backward();
  {
    trace::Span span("backward", "compute");
    const Tensor* d = &dlogits_;
    for (size_t i = layers_.size(); i-- > 0;) {
      // Per layer, so that the timeline shows which layers each bucket's all-reduce overlaps.
      trace::Span layer(backward_names_[i], "layer");
      layer.arg("layer", static_cast<int64_t>(i));
      d = &layers_[i]->backward(*d, i > 0);
    }
  }
  return read_stats(batch.x.dim(0));
}

LossSums SequentialClassifier::evaluate(const MicroBatch& batch) {
  ForwardContext ctx;
  ctx.training = false;
  const Tensor& logits = forward(batch, ctx);
  device_->ops().softmax_xent(logits, batch.y, nullptr, 1.0f, stats_);
  return read_stats(batch.x.dim(0));
}

}  // namespace kiln
