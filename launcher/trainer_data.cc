// The trainer's data side: gathering a micro-batch onto the device (in the compute dtype) and
// the evaluation pass over this rank's share of the evaluation split.
#include <algorithm>

#include "core/trace.h"
#include "launcher/trainer.h"

namespace kiln {

void Trainer::load_micro_batch(int64_t first_sample, int64_t n, const Dataset& data,
                               MicroBatch& out, const int64_t* indices) {
  std::vector<int64_t> xs = data.sample_shape().to_vector();
  xs.insert(xs.begin(), n);
  std::vector<int64_t> ys = data.label_shape().to_vector();
  ys.insert(ys.begin(), n);
  Shape xshape(xs), yshape(ys);
  if (!x_host_.defined() || x_host_.numel() < xshape.numel()) {
    x_host_ = Tensor::empty(Shape{xshape.numel()}, data.input_dtype(), cpu_device());
  }
  if (!y_host_.defined() || y_host_.numel() < yshape.numel()) {
    y_host_ = Tensor::empty(Shape{yshape.numel()}, DType::i32, cpu_device());
  }
  Tensor x = x_host_.view(0, xshape), y = y_host_.view(0, yshape);
  data.gather(indices, n, x, y);
  if (device_->type() == DeviceType::cpu) {
    out.x = x;
    out.y = y;
  } else {
    // Float inputs are computed on in the compute dtype (bf16/f16 under mixed precision).
    const DType compute = model_->params().compute_dtype();
    const DType xdt = is_float(x.dtype()) ? compute : x.dtype();
    if (!out.x.defined() || out.x.numel() != x.numel() || out.x.dtype() != xdt) {
      out.x = Tensor::empty(xshape, xdt, *device_);
      out.y = Tensor::empty(yshape, DType::i32, *device_);
      if (xdt != x.dtype()) x_stage_ = Tensor::empty(xshape, x.dtype(), *device_);
    }
    out.x = out.x.reshape(xshape);
    out.y = out.y.reshape(yshape);
    if (xdt != x.dtype()) {
      x_stage_ = x_stage_.reshape(xshape);
      x_stage_.copy_from(x);
      device_->ops().cast(x_stage_, out.x);
    } else {
      out.x.copy_from(x);
    }
    out.y.copy_from(y);
  }
  out.first_sample = first_sample;
}

EvalResult Trainer::evaluate() {
  trace::Span span("evaluation", "eval");
  const Dataset& data = *data_.eval;
  const int64_t n =
      cfg_.train.eval_samples > 0 ? std::min(cfg_.train.eval_samples, data.size()) : data.size();
  const int64_t begin = n * comm_.rank() / comm_.world();
  const int64_t end = n * (comm_.rank() + 1) / comm_.world();
  LossSums sums;
  MicroBatch batch;
  for (int64_t i = begin; i < end; i += cfg_.train.eval_batch) {
    const int64_t len = std::min(cfg_.train.eval_batch, end - i);
    for (int64_t j = 0; j < len; ++j) indices_[j] = i + j;
    load_micro_batch(i, len, data, batch, indices_.data());
    sums += model_->evaluate(batch);
  }
  Tensor t = Tensor::zeros(Shape{3}, DType::f64, cpu_device());
  double* p = t.data<double>();
  p[0] = sums.loss;
  p[1] = sums.correct;
  p[2] = static_cast<double>(sums.count);
  comm_.all_reduce(t, ReduceOp::sum, CollectiveTag{"evaluation"});
  EvalResult r;
  r.count = static_cast<int64_t>(p[2]);
  r.loss = r.count ? p[0] / p[2] : 0.0;
  r.accuracy = r.count ? p[1] / p[2] : 0.0;
  return r;
}

}  // namespace kiln
