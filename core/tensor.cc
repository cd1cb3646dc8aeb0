// Tensor storage, views and copies.
#include "core/tensor.h"

namespace kiln {

Storage::Storage(Device& device, size_t bytes)
    : device_(&device), data_(device.allocate(bytes == 0 ? 64 : bytes)), bytes_(bytes) {}

Storage::~Storage() { device_->deallocate(data_); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device& device) {
  Tensor t;
  size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  t.storage_ = std::make_shared<Storage>(device, bytes);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device& device) {
  Tensor t = empty(shape, dtype, device);
  t.zero();
  return t;
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  KILN_CHECK(defined(), "view of an undefined tensor");
  KILN_CHECK(offset >= 0 && offset + shape.numel() <= numel(),
             "view [{}, {}) is outside a tensor of {} elements", offset, offset + shape.numel(),
             numel());
  Tensor t = *this;
  t.offset_ = offset_ + static_cast<size_t>(offset) * dtype_size(dtype_);
  t.shape_ = shape;
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  KILN_CHECK(shape.numel() == numel(), "cannot reshape {} to {}", shape_.str(), shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::operator[](int64_t i) const {
  KILN_CHECK(ndim() >= 1 && i >= 0 && i < dim(0), "index {} outside dimension 0 of {}", i,
             shape_.str());
  std::vector<int64_t> dims = shape_.to_vector();
  Shape s(std::vector<int64_t>(dims.begin() + 1, dims.end()));
  return view(i * s.numel(), s);
}

void Tensor::copy_from(const Tensor& src) {
  KILN_CHECK(src.numel() == numel() && src.dtype() == dtype(),
             "copy of {} {} into {} {}", dtype_name(src.dtype()), src.shape().str(),
             dtype_name(dtype()), shape_.str());
  if (nbytes() == 0) return;
  bool src_cpu = src.device().type() == DeviceType::cpu;
  bool dst_cpu = device().type() == DeviceType::cpu;
  if (src_cpu && dst_cpu) {
    device().copy(raw(), src.raw(), nbytes(), CopyKind::device_to_device);
  } else if (src_cpu) {
    device().copy(raw(), src.raw(), nbytes(), CopyKind::host_to_device);
  } else if (dst_cpu) {
    src.device().copy(raw(), src.raw(), nbytes(), CopyKind::device_to_host);
    src.device().compute_stream().synchronize();
  } else {
    KILN_CHECK(&src.device() == &device(), "copies between two accelerators are not supported");
    device().copy(raw(), src.raw(), nbytes(), CopyKind::device_to_device);
  }
}

void Tensor::zero() {
  if (nbytes()) device().memset_zero(raw(), nbytes());
}

Tensor Tensor::to(Device& device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

}  // namespace kiln
