// Finite-difference gradients and the one-layer harness.
#include "grad_check.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::test {

std::vector<double> numeric_gradient(double* p, int64_t n, const std::function<double()>& loss,
                                     double h) {
  std::vector<double> g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double saved = p[i];
    p[i] = saved + h;
    const double up = loss();
    p[i] = saved - h;
    const double down = loss();
    p[i] = saved;
    g[static_cast<size_t>(i)] = (up - down) / (2 * h);
  }
  return g;
}

std::unique_ptr<LayerUnderTest> f64_layer(std::unique_ptr<Layer> layer, uint64_t seed) {
  auto t = std::make_unique<LayerUnderTest>();
  t->layer = std::move(layer);
  t->layer->bind(&t->store, &cpu_device());
  t->layer->declare(t->store, "layer");
  t->store.finalize(cpu_device(), DType::f64);
  t->layer->init(t->store, seed);
  return t;
}

void check_layer_gradients(LayerUnderTest& t, Tensor x, const ForwardContext& ctx, uint64_t seed) {
  Layer& layer = *t.layer;
  const Shape out_shape = layer.output_shape(x.shape());
  const Tensor r = random_tensor(out_shape, DType::f64, seed);
  const std::vector<double> rv = as_doubles(r);
  auto loss = [&] {
    const Tensor& y = layer.forward(x, ctx);
    EXPECT_EQ(y.shape(), out_shape);
    const double* yp = y.data<double>();
    double l = 0;
    for (size_t i = 0; i < rv.size(); ++i) l += rv[i] * yp[i];
    return l;
  };

  // Analytic: one forward, one backward with dL/dy = r.
  t.store.grads().zero();
  t.store.begin_backward();
  loss();
  const std::vector<double> dx = as_doubles(layer.backward(r, true));
  const std::vector<double> grads = as_doubles(t.store.grads());

  EXPECT_TRUE(all_close(dx, numeric_gradient(x.data<double>(), x.numel(), loss), kFdRtol, kFdAtol))
      << layer.kind() << ": dL/dx";
  for (const ParamInfo& info : t.store.infos()) {
    double* p = t.store.params().data<double>() + info.offset;
    std::vector<double> analytic(grads.begin() + info.offset,
                                 grads.begin() + info.offset + info.numel);
    EXPECT_TRUE(all_close(analytic, numeric_gradient(p, info.numel, loss), kFdRtol, kFdAtol))
        << layer.kind() << ": dL/d" << info.name;
  }
}

}  // namespace kiln::test
