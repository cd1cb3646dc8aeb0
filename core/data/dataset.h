// Datasets hold their samples in host memory and copy a batch, given global sample indices, into
// host tensors. The sampler (sampler.h) decides which indices make up each batch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/tensor.h"

namespace kiln {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Shape of one input sample, e.g. (1, 28, 28); labels are one i32 per sample (classification)
  // or per position (language modelling, label_shape non-empty).
  virtual Shape sample_shape() const = 0;
  virtual DType input_dtype() const { return DType::f32; }
  virtual Shape label_shape() const { return Shape{}; }
  virtual int64_t num_classes() const = 0;
  // x (n, sample_shape...) and y (n, label_shape...) are CPU tensors filled with the samples
  // whose indices are given. Thread-safe (const).
  virtual void gather(const int64_t* indices, int64_t n, Tensor& x, Tensor& y) const = 0;
  virtual std::string describe() const = 0;
};

struct DatasetPair {
  std::unique_ptr<Dataset> train;
  std::unique_ptr<Dataset> eval;
};

// Opens the datasets named by the config (data.name); throws naming what is missing and the
// package that provides it.
DatasetPair open_datasets(const Config& cfg);

}  // namespace kiln
