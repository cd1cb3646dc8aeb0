// Whole models built through the registry in float64: every parameter gradient of the mean
// cross-entropy (with dropout active) against central finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/config.h"
#include "grad_check.h"
#include "models/registry.h"
#include "test_util.h"

namespace kiln::test {
namespace {

// How close, over the layers' inputs, a batch comes to a kink: the smallest |pre-activation|
// of any ReLU and the smallest lead of a 2x2 max-pool window's maximum over its runner-up
// (windows whose maximum is 0 are all ReLU zeros and stay 0 under small perturbations).
double kink_margin(SequentialClassifier& model, const MicroBatch& batch,
                   const ForwardContext& ctx) {
  double margin = 1e300;
  const Tensor* x = &batch.x;
  for (const auto& layer : model.layers()) {
    const std::vector<double> v = as_doubles(*x);
    if (layer->kind() == "relu") {
      for (double e : v) margin = std::min(margin, std::fabs(e));
    } else if (layer->kind() == "maxpool2d") {
      const int64_t planes = x->dim(0) * x->dim(1), h = x->dim(2), w = x->dim(3);
      for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t i = 0; i + 1 < h; i += 2)
          for (int64_t j = 0; j + 1 < w; j += 2) {
            std::vector<double> win;
            for (int64_t a : {0, 1})
              for (int64_t b : {0, 1}) win.push_back(v[(pl * h + i + a) * w + j + b]);
            std::sort(win.rbegin(), win.rend());
            if (win[0] > 0) margin = std::min(margin, win[0] - win[1]);
          }
    }
    x = &layer->forward(*x, ctx);
  }
  return margin;
}

struct ModelCase {
  Config cfg;
  ModelSpec spec;
  int64_t batch;
};

// Builds the model in f64 from the first seed whose batch keeps every ReLU input and max-pool
// lead at least 1e-3 (100 finite-difference steps) from its kink, so each difference quotient
// stays on one linear piece; then checks every parameter's gradient.
void check_model_gradients(const ModelCase& mc) {
  ForwardContext ctx;
  ctx.training = true;
  ctx.seed = 9;
  ctx.step = 4;
  ctx.first_sample = 128;
  const float grad_scale = 1.0f / static_cast<float>(mc.batch);
  std::vector<int64_t> xs = mc.spec.sample_shape.to_vector();
  xs.insert(xs.begin(), mc.batch);

  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::unique_ptr<Model> model = create_model(mc.cfg, mc.spec);
    model->build(cpu_device(), DType::f64, seed);
    auto* seq = dynamic_cast<SequentialClassifier*>(model.get());
    ASSERT_NE(seq, nullptr);
    MicroBatch batch{random_tensor(Shape(xs), DType::f64, seed + 100),
                     random_labels(mc.batch, mc.spec.num_classes, seed + 200), ctx.first_sample};
    if (kink_margin(*seq, batch, ctx) < 1e-3) continue;

    ParamStore& store = model->params();
    store.grads().zero();
    model->forward_backward(batch, ctx, grad_scale);
    const std::vector<double> grads = as_doubles(store.grads());
    auto loss = [&] { return model->forward_backward(batch, ctx, grad_scale).loss * grad_scale; };
    for (const ParamInfo& info : store.infos()) {
      double* p = store.params().data<double>() + info.offset;
      std::vector<double> analytic(grads.begin() + info.offset,
                                   grads.begin() + info.offset + info.numel);
      EXPECT_TRUE(all_close(analytic, numeric_gradient(p, info.numel, loss), kFdRtol, kFdAtol))
          << mc.cfg.model.name << ": dL/d" << info.name << " (seed " << seed << ")";
    }
    return;
  }
  FAIL() << "no seed in 1..50 keeps the activations 1e-3 away from every kink";
}

TEST(ModelGradient, MlpFromRegistry) {
  ModelCase mc;
  mc.cfg.model.name = "mlp";
  mc.cfg.model.hidden = {6, 5};
  mc.cfg.model.dropout = 0.2;
  mc.spec = ModelSpec{Shape{1, 4, 4}, 3};
  mc.batch = 4;
  check_model_gradients(mc);
}

TEST(ModelGradient, CnnFromRegistry) {
  ModelCase mc;
  mc.cfg.model.name = "cnn";
  mc.cfg.model.channels = {2, 3};
  mc.cfg.model.kernel = 3;
  mc.cfg.model.fc = 6;
  mc.cfg.model.dropout = 0.25;
  mc.spec = ModelSpec{Shape{1, 8, 8}, 4};
  mc.batch = 3;
  check_model_gradients(mc);
}

}  // namespace
}  // namespace kiln::test
