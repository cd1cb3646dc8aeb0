// The op case table and the helpers cases share (device copies, poisoning, read-back).
#include "op_cases.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "core/rng.h"
#include "test_util.h"

namespace kiln::test {

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> out;
    add_dense_cases(out);
    add_pointwise_cases(out);
    add_flat_cases(out);
    add_transformer_cases(out);
    return out;
  }();
  return cases;
}

Device* test_device(DeviceType type, std::string* why) {
  if (type == DeviceType::cpu) return &cpu_device();
  static std::map<DeviceType, std::unique_ptr<Device>> opened;
  auto it = opened.find(type);
  if (it != opened.end()) return it->second.get();
  register_builtin_backends();
  const std::optional<BackendEntry> backend = find_backend(type);
  if (!backend) {
    *why = fmt::format("this build has no {} backend (it was configured without it)",
                       device_type_name(type));
    return nullptr;
  }
  if (backend->count() == 0) {
    *why = fmt::format("no {} device: {}", device_type_name(type), backend->why_unavailable());
    return nullptr;
  }
  return (opened[type] = backend->open(0)).get();
}

void expect_outputs_match(const OpOutputs& got, const OpOutputs& want, const Tolerance& tol,
                          const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << "number of outputs";
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_EQ(got[k].name, want[k].name);
    double scale = 1.0;
    for (double v : want[k].values) {
      if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
    }
    if (want[k].exact) {
      EXPECT_TRUE(all_close(got[k].values, want[k].values, 0, 0)) << "output " << want[k].name;
    } else {
      EXPECT_TRUE(all_close(got[k].values, want[k].values, tol.rtol, tol.atol * scale))
          << "output " << want[k].name << " (" << what << ": rtol " << tol.rtol << ", atol "
          << tol.atol << " x " << scale << ")";
    }
  }
}

namespace {
thread_local bool offset_views = false;
}  // namespace

ScopedOffsetViews::ScopedOffsetViews() : previous_(offset_views) { offset_views = true; }
ScopedOffsetViews::~ScopedOffsetViews() { offset_views = previous_; }

Tensor on(Device& device, const Tensor& host) {
  if (!offset_views) return host.to(device);
  // One element in keeps every element naturally aligned (atomics on f64 stats stay legal)
  // while moving the pointer off 16 bytes for every dtype.
  Tensor storage = Tensor::empty(Shape{host.numel() + 1}, host.dtype(), device);
  Tensor t = storage.view(1, host.shape());
  t.copy_from(host);
  return t;
}

Tensor poisoned(Device& device, const Shape& shape, DType dtype) {
  Tensor h = Tensor::empty(shape, dtype, cpu_device());
  const int64_t n = h.numel();
  if (dtype == DType::f32) {
    float* p = h.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
  } else if (dtype == DType::f64) {
    double* p = h.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = std::numeric_limits<double>::quiet_NaN();
  } else if (dtype == DType::bf16) {
    bf16_t* p = h.data<bf16_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = bf16_t{0x7fc0};
  } else if (dtype == DType::f16) {
    f16_t* p = h.data<f16_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = f16_t{0x7e00};
  } else if (h.nbytes()) {
    std::memset(h.raw(), 0xff, h.nbytes());
  }
  return on(device, h);
}

std::vector<double> values(const Tensor& host) {
  std::vector<double> out(static_cast<size_t>(host.numel()));
  for (int64_t i = 0; i < host.numel(); ++i) out[i] = load_element(host.raw(), host.dtype(), i);
  return out;
}

Tensor from_doubles(const std::vector<double>& v, const Shape& shape, DType dtype) {
  if (!is_float(dtype)) {
    ADD_FAILURE() << "from_doubles: " << dtype_name(dtype) << " is not a float dtype";
    return Tensor();
  }
  Tensor t = Tensor::empty(shape, dtype, cpu_device());
  for (size_t i = 0; i < v.size(); ++i)
    store_element(t.raw(), dtype, static_cast<int64_t>(i), v[i]);
  return t;
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
