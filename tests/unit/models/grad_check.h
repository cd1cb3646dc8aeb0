// Gradient checking in float64: central finite differences of a scalar function of values held
// in memory, and a harness that gives one layer its own parameter store, as a model would.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/param_store.h"
#include "models/layer.h"

namespace kiln::test {

// The step of the central differences. Linear and piecewise-linear functions are differenced
// exactly up to round-off (eps * |L| / h, about 1e-11 here); smooth ones add h^2 f''' / 6,
// about 1e-10.
constexpr double kFdStep = 1e-5;
// The comparison: relative error 1e-6, with an absolute floor of 1e-9 for elements whose
// gradient is (close to) zero, where only round-off of the difference quotient remains.
constexpr double kFdRtol = 1e-6;
constexpr double kFdAtol = 1e-9;

// dL/dp[i] for i < n by (L(p + h) - L(p - h)) / 2h, restoring each value afterwards.
std::vector<double> numeric_gradient(double* p, int64_t n, const std::function<double()>& loss,
                                     double h = kFdStep);

// One layer declared in its own ParamStore (as SequentialClassifier::build does), laid out in
// f64 on the CPU and initialised from `seed`.
struct LayerUnderTest {
  ParamStore store;
  std::unique_ptr<Layer> layer;
};
std::unique_ptr<LayerUnderTest> f64_layer(std::unique_ptr<Layer> layer, uint64_t seed);

// Checks dL/dx and every parameter gradient of L = sum(r * layer(x)) for random r against
// finite differences (gtest failures name the input or parameter that differs).
void check_layer_gradients(LayerUnderTest& t, Tensor x, const ForwardContext& ctx, uint64_t seed);

}  // namespace kiln::test
