// Op cases over flat buffers: AdamW and SGD updates against PyTorch's formulas written as plain
// loops in double, sum_squares, scale, all_finite, and casts to and from the 16-bit floats
// against a rounding written from the formats' definitions.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>

#include "op_cases.h"
#include "test_util.h"

namespace kiln::test {

namespace {

Tensor rnd(const Shape& s, DType t, uint64_t seed, int i, double lo = -1.0, double hi = 1.0) {
  return random_tensor(s, t, seed * 3571 + static_cast<uint64_t>(i), lo, hi);
}

// Flat ranges, one of them above the size where the CPU kernels go parallel.
const std::vector<Dims> kFlatShapes = {{1}, {7}, {1000}, {40001}};

// ---- AdamW ----------------------------------------------------------------------------------

AdamWArgs adamw_args(int64_t step) {
  AdamWArgs a;
  a.lr = 0.01;
  a.beta1 = 0.9;
  a.beta2 = 0.999;
  a.eps = 1e-8;
  a.weight_decay = 0.1;
  a.step = step;
  a.grad_scale = 0.5f;
  return a;
}

// dims: elements, the (1-based) step, which sets the bias corrections.
OpCase adamw_case() {
  OpCase c;
  c.name = "adamw_step";
  c.dims_meaning = "elements, step";
  c.shapes = {{1, 1}, {7, 1}, {1000, 3}, {40001, 10}};
  c.dtypes = {DType::f32};  // master weights and state are f32
  c.half = false;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    const Shape s{d[0]};
    return std::vector<Tensor>{rnd(s, t, seed, 0), rnd(s, t, seed, 1), rnd(s, t, seed, 2),
                               rnd(s, t, seed, 3, 0.0, 1.0)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    Tensor p = on(dev, in[0]), m = on(dev, in[2]), v = on(dev, in[3]);
    ops.adamw_step(p, on(dev, in[1]), m, v, adamw_args(d[1]));
    return OpOutputs{read("param", p), read("exp_avg", m), read("exp_avg_sq", v)};
  };
  // torch.optim.AdamW (single tensor, no amsgrad): decay, moments, bias-corrected step.
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const AdamWArgs a = adamw_args(d[1]);
    const double lr = a.lr, b1 = a.beta1, b2 = a.beta2, eps = a.eps, wd = a.weight_decay;
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(a.step));
    const double bc2 = 1.0 - std::pow(b2, static_cast<double>(a.step));
    std::vector<double> p = values(in[0]), g = values(in[1]), m = values(in[2]), v = values(in[3]);
    for (size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] * static_cast<double>(a.grad_scale);
      p[i] *= 1.0 - lr * wd;
      m[i] = b1 * m[i] + (1.0 - b1) * gi;
      v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
    return OpOutputs{{"param", p}, {"exp_avg", m}, {"exp_avg_sq", v}};
  };
  return c;
}

// ---- SGD ------------------------------------------------------------------------------------

OpCase sgd_case(const std::string& name, SgdArgs a) {
  a.lr = 0.1f;
  a.grad_scale = 0.5f;
  OpCase c;
  c.name = name;
  c.dims_meaning = "elements";
  c.shapes = kFlatShapes;
  c.dtypes = {DType::f32};
  c.half = false;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    const Shape s{d[0]};
    return std::vector<Tensor>{rnd(s, t, seed, 0), rnd(s, t, seed, 1), rnd(s, t, seed, 2)};
  };
  c.run = [a](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor p = on(dev, in[0]), buf = on(dev, in[2]);
    ops.sgd_step(p, on(dev, in[1]), buf, a);
    return OpOutputs{read("param", p), read("momentum", buf)};
  };
  // torch.optim.SGD: d = g + wd p; buf = d on the first step, else momentum buf +
  // (1 - dampening) d; the step is d + momentum buf (Nesterov) or buf; without momentum, d.
  c.reference = [a](const Dims&, const std::vector<Tensor>& in) {
    const double lr = a.lr, mom = a.momentum, damp = a.dampening, wd = a.weight_decay;
    std::vector<double> p = values(in[0]), g = values(in[1]), buf = values(in[2]);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] * static_cast<double>(a.grad_scale) + wd * p[i];
      if (mom != 0) {
        buf[i] = a.first_step ? d : mom * buf[i] + (1.0 - damp) * d;
        d = a.nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
    return OpOutputs{{"param", p}, {"momentum", buf}};
  };
  return c;
}

void add_sgd_cases(std::vector<OpCase>& out) {
  SgdArgs plain;
  plain.weight_decay = 0.01f;
  out.push_back(sgd_case("sgd_step_plain", plain));
  SgdArgs first;
  first.momentum = 0.9f;
  first.dampening = 0.1f;
  first.weight_decay = 0.01f;
  first.first_step = true;
  out.push_back(sgd_case("sgd_step_momentum_first", first));
  SgdArgs later = first;
  later.first_step = false;
  out.push_back(sgd_case("sgd_step_momentum", later));
  SgdArgs nesterov = later;
  nesterov.dampening = 0.0f;
  nesterov.nesterov = true;
  out.push_back(sgd_case("sgd_step_nesterov", nesterov));
}

// ---- reductions and scaling -----------------------------------------------------------------

OpCase sum_squares_case() {
  OpCase c;
  c.name = "sum_squares";
  c.dims_meaning = "elements";
  c.shapes = kFlatShapes;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape{d[0]}, t, seed, 0)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    return OpOutputs{{"sum", {ops.sum_squares(on(dev, in[0]))}}};
  };
  c.reference = [](const Dims&, const std::vector<Tensor>& in) {
    double s = 0;
    for (double v : values(in[0])) s += v * v;
    return OpOutputs{{"sum", {s}}};
  };
  // The CPU sums f32 squares in double; a device may sum partial results in f32 (1e-6).
  c.f32 = {1e-6, 0};
  return c;
}

OpCase scale_case() {
  OpCase c;
  c.name = "scale";
  c.dims_meaning = "elements";
  c.shapes = kFlatShapes;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape{d[0]}, t, seed, 0)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor x = on(dev, in[0]);
    ops.scale(x, -0.37);
    return OpOutputs{read("x", x)};
  };
  c.reference = [](const Dims&, const std::vector<Tensor>& in) {
    std::vector<double> x = values(in[0]);
    for (double& v : x) v *= -0.37;
    return OpOutputs{{"x", x}};
  };
  return c;
}

// `bad` is NaN, +Inf or -Inf placed at `where` (0 = first, 1 = middle, 2 = last element), or
// none when `bad` is 0.
OpCase all_finite_case(const std::string& name, double bad, int where) {
  OpCase c;
  c.name = name;
  c.dims_meaning = "elements";
  c.shapes = kFlatShapes;
  c.make_inputs = [=](const Dims& d, DType t, uint64_t seed) {
    Tensor x = rnd(Shape{d[0]}, t, seed, 0);
    if (bad != 0) {
      const int64_t i = where == 0 ? 0 : where == 1 ? d[0] / 2 : d[0] - 1;
      if (t == DType::f32)
        x.data<float>()[i] = static_cast<float>(bad);
      else
        x.data<double>()[i] = bad;
    }
    return std::vector<Tensor>{x};
  };
  c.run = [](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    return OpOutputs{{"finite", {ops.all_finite(on(dev, in[0])) ? 1.0 : 0.0}, true}};
  };
  c.reference = [](const Dims&, const std::vector<Tensor>& in) {
    bool ok = true;
    for (double v : values(in[0])) ok = ok && std::isfinite(v);
    return OpOutputs{{"finite", {ok ? 1.0 : 0.0}, true}};
  };
  return c;
}

// ---- casts ----------------------------------------------------------------------------------

struct HalfFormat {
  const char* name;
  DType dtype;
  int bits;           // significant bits, the implicit one included
  int emin;           // exponent of the smallest normal number
  double max_finite;  // larger values round to infinity
};
const HalfFormat kBf16{"bf16", DType::bf16, 8, -126, 0x1.fep127};
const HalfFormat kF16{"f16", DType::f16, 11, -14, 65504.0};

// x rounded to the format, to nearest with ties to even (nearbyint's default mode), after
// rounding to f32 first: casts go through f32, as a GPU converts.
double round_to(const HalfFormat& f, double x) {
  x = static_cast<float>(x);
  if (!std::isfinite(x) || x == 0) return x;
  int e = 0;
  std::frexp(x, &e);  // |x| = m 2^e, m in [0.5, 1): the last bit is worth 2^(e - bits)
  const int q = std::max(e - f.bits, f.emin - f.bits + 1);  // subnormals: a fixed last bit
  const double r = std::ldexp(std::nearbyint(std::ldexp(x, -q)), q);
  if (std::fabs(r) > f.max_finite) return std::copysign(std::numeric_limits<double>::infinity(), r);
  return r;
}

// Random values with the awkward ones first: signed zero, ties that round to even (up and
// down), the largest f16 and the first value past it, an f16 subnormal, a value near bf16's
// top, infinities and NaN.
std::vector<double> cast_values(int64_t n, uint64_t seed) {
  std::vector<double> v = values(rnd(Shape{n}, DType::f64, seed, 0, -3.0, 3.0));
  const double specials[] = {0.0,
                             -0.0,
                             1.0 + 0x1p-8,
                             1.0 + 3 * 0x1p-8,
                             1.0 + 0x1p-11,
                             65519.0,
                             65520.0,
                             1e-6,
                             -3e38,
                             std::nan(""),
                             std::numeric_limits<double>::infinity()};
  for (size_t i = 0; i < std::size(specials) && i < v.size(); ++i) v[i] = specials[i];
  return v;
}

// `to_half`: the wide dtype (f32 or f64, the case's dtype) into the 16-bit format, else the
// reverse. `accumulate`: dst += src, summed in double and then rounded once into dst's type.
OpCase cast_case(const HalfFormat& f, bool to_half, bool accumulate) {
  OpCase c;
  c.name = std::string("cast_") + (to_half ? "to_" : "from_") + f.name +
           (accumulate ? "_accumulate" : "");
  c.dims_meaning = "elements";
  c.shapes = kFlatShapes;
  c.half = false;  // the 16-bit side is part of the case
  c.make_inputs = [=](const Dims& d, DType t, uint64_t seed) {
    const Shape s{d[0]};
    const DType src = to_half ? t : f.dtype, dst = to_half ? f.dtype : t;
    return std::vector<Tensor>{from_doubles(cast_values(d[0], seed), s, src),
                               from_doubles(values(rnd(s, DType::f64, seed, 1)), s, dst)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor dst = accumulate ? on(dev, in[1]) : poisoned(dev, in[1].shape(), in[1].dtype());
    ops.cast(on(dev, in[0]), dst, accumulate);
    return OpOutputs{read("dst", dst)};
  };
  c.reference = [=](const Dims&, const std::vector<Tensor>& in) {
    std::vector<double> src = values(in[0]), dst = values(in[1]);
    const DType dt = in[1].dtype();
    for (size_t i = 0; i < src.size(); ++i) {
      const double v = accumulate ? src[i] + dst[i] : src[i];
      dst[i] = dt == DType::f64 ? v : dt == DType::f32 ? static_cast<float>(v) : round_to(f, v);
    }
    return OpOutputs{{"dst", dst}};
  };
  return c;
}

}  // namespace

void add_flat_cases(std::vector<OpCase>& out) {
  out.push_back(adamw_case());
  add_sgd_cases(out);
  out.push_back(sum_squares_case());
  out.push_back(scale_case());
  const double inf = std::numeric_limits<double>::infinity();
  out.push_back(all_finite_case("all_finite_clean", 0, 0));
  out.push_back(all_finite_case("all_finite_nan_last", std::nan(""), 2));
  out.push_back(all_finite_case("all_finite_inf_middle", inf, 1));
  out.push_back(all_finite_case("all_finite_neg_inf_first", -inf, 0));
  for (const HalfFormat* f : {&kBf16, &kF16}) {
    for (bool to_half : {true, false}) {
      for (bool accumulate : {false, true}) out.push_back(cast_case(*f, to_half, accumulate));
    }
  }
}

}  // namespace kiln::test
