// Layout of the flat parameter/gradient buffers and the backward watermark.
#include "core/param_store.h"

#include "core/ops.h"

namespace kiln {

int ParamStore::declare(const std::string& name, const Shape& shape, bool decay) {
  KILN_CHECK(!finalized(), "parameter '{}' declared after the buffers were laid out", name);
  KILN_CHECK(find(name) < 0, "parameter '{}' declared twice", name);
  ParamInfo info;
  info.name = name;
  info.shape = shape;
  info.offset = total_;
  info.numel = shape.numel();
  info.decay = decay;
  total_ += (info.numel + kAlignElems - 1) / kAlignElems * kAlignElems;
  infos_.push_back(info);
  return static_cast<int>(infos_.size()) - 1;
}

void ParamStore::finalize(Device& device, DType dtype) {
  KILN_CHECK(!finalized(), "parameter buffers laid out twice");
  params_ = Tensor::zeros(Shape{total_}, dtype, device);
  grads_ = Tensor::zeros(Shape{total_}, dtype, device);
  ready_.assign(infos_.size(), 0);
  next_unready_ = static_cast<int>(infos_.size()) - 1;
}

void ParamStore::set_compute_dtype(DType dtype) {
  KILN_CHECK(finalized(), "the compute dtype is set after the buffers are laid out");
  KILN_CHECK(is_float(dtype), "compute dtype {} is not a float type", dtype_name(dtype));
  if (dtype == params_.dtype()) {
    cparams_ = Tensor();
    return;
  }
  cparams_ = Tensor::zeros(Shape{total_}, dtype, params_.device());
  refresh_compute_params();
}

Tensor ParamStore::compute_param(int id) const {
  if (!cparams_.defined()) return param(id);
  const ParamInfo& p = infos_.at(id);
  return cparams_.view(p.offset, p.shape);
}

void ParamStore::refresh_compute_params() {
  if (cparams_.defined()) params_.device().ops().cast(params_, cparams_);
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (const ParamInfo& p : infos_) n += p.numel;
  return n;
}

Tensor ParamStore::param(int id) const {
  const ParamInfo& p = infos_.at(id);
  return params_.view(p.offset, p.shape);
}

Tensor ParamStore::grad(int id) const {
  const ParamInfo& p = infos_.at(id);
  return grads_.view(p.offset, p.shape);
}

int ParamStore::find(const std::string& name) const {
  for (size_t i = 0; i < infos_.size(); ++i) {
    if (infos_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int64_t ParamStore::span_end(int id) const {
  return id + 1 < static_cast<int>(infos_.size()) ? infos_[id + 1].offset : total_;
}

void ParamStore::begin_backward() {
  std::fill(ready_.begin(), ready_.end(), 0);
  next_unready_ = static_cast<int>(infos_.size()) - 1;
}

void ParamStore::mark_grad_ready(int id) {
  KILN_CHECK(id >= 0 && id < static_cast<int>(ready_.size()), "no parameter with id {}", id);
  ready_[id] = 1;
  if (id != next_unready_) return;  // an earlier-declared gradient may be ready first
  const int64_t end = span_end(id);
  while (next_unready_ >= 0 && ready_[next_unready_]) --next_unready_;
  const int64_t begin = next_unready_ >= 0 ? span_end(next_unready_) : 0;
  if (hook_) hook_(begin, end);
}

}  // namespace kiln
