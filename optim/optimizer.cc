// AdamW and SGD over the flat buffers; the learning-rate schedule; clipping.
#include "optim/optimizer.h"

#include <cmath>

#include "core/ops.h"

namespace kiln {

std::vector<ParamSegment> param_segments(const ParamStore& store) {
  std::vector<ParamSegment> out;
  const auto& infos = store.infos();
  for (size_t i = 0; i < infos.size(); ++i) {
    const int64_t begin = infos[i].offset, end = store.span_end(static_cast<int>(i));
    if (!out.empty() && out.back().decay == infos[i].decay && out.back().end == begin) {
      out.back().end = end;
    } else {
      out.push_back(ParamSegment{begin, end, infos[i].decay});
    }
  }
  return out;
}

namespace {

class AdamW final : public Optimizer {
 public:
  AdamW(const OptimConfig& cfg, ParamStore& store) : cfg_(cfg), segments_(param_segments(store)) {
    Device& dev = store.params().device();
    m_ = Tensor::zeros(Shape{store.total()}, DType::f32, dev);
    v_ = Tensor::zeros(Shape{store.total()}, DType::f32, dev);
  }
  std::string name() const override { return "adamw"; }

  void step(ParamStore& store, double lr, float grad_scale) override {
    ++steps_;
    Ops& ops = store.params().device().ops();
    for (const ParamSegment& s : segments_) {
      const Shape n{s.end - s.begin};
      Tensor p = store.params().view(s.begin, n), g = store.grads().view(s.begin, n);
      Tensor m = m_.view(s.begin, n), v = v_.view(s.begin, n);
      AdamWArgs a;
      a.lr = lr;
      a.beta1 = cfg_.beta1;
      a.beta2 = cfg_.beta2;
      a.eps = cfg_.eps;
      a.weight_decay = s.decay ? cfg_.weight_decay : 0.0;
      a.step = steps_;
      a.grad_scale = grad_scale;
      ops.adamw_step(p, g, m, v, a);
    }
  }
  std::vector<NamedState> state() override { return {{"exp_avg", &m_}, {"exp_avg_sq", &v_}}; }

 private:
  OptimConfig cfg_;
  std::vector<ParamSegment> segments_;
  Tensor m_, v_;
};

class Sgd final : public Optimizer {
 public:
  Sgd(const OptimConfig& cfg, ParamStore& store) : cfg_(cfg), segments_(param_segments(store)) {
    buf_ = Tensor::zeros(Shape{store.total()}, DType::f32, store.params().device());
  }
  std::string name() const override { return "sgd"; }

  void step(ParamStore& store, double lr, float grad_scale) override {
    Ops& ops = store.params().device().ops();
    for (const ParamSegment& s : segments_) {
      const Shape n{s.end - s.begin};
      Tensor p = store.params().view(s.begin, n), g = store.grads().view(s.begin, n);
      Tensor b = buf_.view(s.begin, n);
      SgdArgs a;
      a.lr = static_cast<float>(lr);
      a.momentum = static_cast<float>(cfg_.momentum);
      a.weight_decay = s.decay ? static_cast<float>(cfg_.weight_decay) : 0.0f;
      a.nesterov = cfg_.nesterov;
      a.first_step = steps_ == 0;
      a.grad_scale = grad_scale;
      ops.sgd_step(p, g, b, a);
    }
    ++steps_;
  }
  std::vector<NamedState> state() override { return {{"momentum", &buf_}}; }

 private:
  OptimConfig cfg_;
  std::vector<ParamSegment> segments_;
  Tensor buf_;
};

}  // namespace

std::unique_ptr<Optimizer> create_optimizer(const OptimConfig& cfg, ParamStore& store) {
  KILN_CHECK(store.finalized(), "optimizer created before the parameters were laid out");
  KILN_CHECK(store.params().dtype() == DType::f32,
             "optimizers keep f32 master weights; the parameters are {}",
             dtype_name(store.params().dtype()));
  if (cfg.name == "adamw") return std::make_unique<AdamW>(cfg, store);
  if (cfg.name == "sgd") return std::make_unique<Sgd>(cfg, store);
  KILN_FAIL("optim.name = '{}' is not an optimizer: expected adamw or sgd", cfg.name);
}

double learning_rate(const OptimConfig& cfg, int64_t step, int64_t total) {
  const double peak = cfg.lr;
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) {
    return peak * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  }
  if (cfg.schedule == "constant") return peak;
  const double floor = peak * cfg.min_lr_ratio;
  const int64_t span = total - cfg.warmup_steps;
  if (span <= 1) return peak;
  const double t = std::clamp(static_cast<double>(step - cfg.warmup_steps) /
                                  static_cast<double>(span - 1), 0.0, 1.0);
  if (cfg.schedule == "linear") return floor + (peak - floor) * (1.0 - t);
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(M_PI * t));
}

double clip_factor(double norm, double clip_norm) {
  if (clip_norm <= 0 || !std::isfinite(norm)) return 1.0;
  const double coef = clip_norm / (norm + 1e-6);
  return coef < 1.0 ? coef : 1.0;
}

}  // namespace kiln
