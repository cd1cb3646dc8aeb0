// The op case table and the helpers cases share (device copies, poisoning, read-back).
#include "op_cases.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/rng.h"
#include "test_util.h"

namespace kiln::test {

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> out;
    add_dense_cases(out);
    add_pointwise_cases(out);
    add_flat_cases(out);
    return out;
  }();
  return cases;
}

Tensor on(Device& device, const Tensor& host) { return host.to(device); }

Tensor poisoned(Device& device, const Shape& shape, DType dtype) {
  Tensor h = Tensor::empty(shape, dtype, cpu_device());
  const int64_t n = h.numel();
  if (dtype == DType::f32) {
    float* p = h.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
  } else if (dtype == DType::f64) {
    double* p = h.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = std::numeric_limits<double>::quiet_NaN();
  } else if (h.nbytes()) {
    std::memset(h.raw(), 0xff, h.nbytes());
  }
  return h.to(device);
}

std::vector<double> values(const Tensor& host) {
  if (host.dtype() == DType::u8) {
    std::vector<uint8_t> v = host.to_vector<uint8_t>();
    return std::vector<double>(v.begin(), v.end());
  }
  return as_doubles(host);
}

OpOutput read(const std::string& name, const Tensor& t, bool exact) {
  return OpOutput{name, values(t.is_cpu() ? t : t.to(cpu_device())), exact};
}

Tensor random_mask(const Shape& shape, uint64_t seed) {
  Rng rng(seed, 92);
  std::vector<uint8_t> v(static_cast<size_t>(shape.numel()));
  for (uint8_t& x : v) x = static_cast<uint8_t>(rng.below(2));
  return Tensor::from_vector(v, shape);
}

}  // namespace kiln::test
