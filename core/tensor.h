// Tensor: a contiguous, typed view into device memory. Storage is shared by reference count;
// views (sub-ranges, reshapes) never copy. Tensors do no math themselves: kernels live in Ops.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace kiln {

// A block of device memory, freed by its device when the last tensor viewing it is gone.
class Storage {
 public:
  Storage(Device& device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device& device() const { return *device_; }

 private:
  Device* device_;
  void* data_;
  size_t bytes_;
};

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised memory on `device`.
  static Tensor empty(const Shape& shape, DType dtype, Device& device);
  static Tensor zeros(const Shape& shape, DType dtype, Device& device);
  // A CPU tensor holding a copy of `values`.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  Device& device() const { return storage_->device(); }
  bool is_cpu() const { return defined() && device().type() == DeviceType::cpu; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  template <typename T>
  T* data() const {
    KILN_CHECK(dtype_ == dtype_of<T>(), "tensor holds {}, accessed as {}", dtype_name(dtype_),
               dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw());
  }

  // The elements [offset, offset + shape.numel()) of this tensor, seen with `shape`.
  Tensor view(int64_t offset, const Shape& shape) const;
  // Same elements, another shape with the same element count.
  Tensor reshape(const Shape& shape) const;
  // The i-th slice along the first dimension.
  Tensor operator[](int64_t i) const;

  // Copies between tensors of equal size and dtype, across devices (on the compute stream).
  void copy_from(const Tensor& src);
  void zero();
  // Host copies for tests and I/O.
  template <typename T>
  std::vector<T> to_vector() const;
  Tensor to(Device& device) const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
};

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  KILN_CHECK(static_cast<int64_t>(values.size()) == shape.numel(),
             "{} values do not fill shape {}", values.size(), shape.str());
  Tensor t = empty(shape, dtype_of<T>(), cpu_device());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  KILN_CHECK(dtype_ == dtype_of<T>(), "tensor holds {}, read as {}", dtype_name(dtype_),
             dtype_name(dtype_of<T>()));
  std::vector<T> out(static_cast<size_t>(numel()));
  if (out.empty()) return out;
  device().copy(out.data(), raw(), nbytes(), CopyKind::device_to_host);
  device().compute_stream().synchronize();
  return out;
}

}  // namespace kiln
