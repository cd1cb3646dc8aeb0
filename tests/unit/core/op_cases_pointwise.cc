// Op cases of the pointwise and per-row ops: max-pooling, ReLU, GELU, dropout and softmax
// cross-entropy, each with its plain-loop reference in double.
#include <cmath>
#include <limits>
#include <string>

#include "core/rng.h"
#include "op_cases.h"
#include "test_util.h"

namespace kiln::test {

namespace {

Tensor rnd(const Shape& s, DType t, uint64_t seed, int i, double lo = -1.0, double hi = 1.0) {
  return random_tensor(s, t, seed * 6151 + static_cast<uint64_t>(i), lo, hi);
}

// Element-wise ops take any shape: the dims are the tensor's shape. The last one is above the
// size where the CPU kernels go parallel, and odd.
const std::vector<Dims> kPointwiseShapes = {{1}, {7}, {3, 5, 7}, {1000}, {2, 20001}};

// ---- max-pooling ----------------------------------------------------------------------------

struct PoolDims {
  int64_t n, c, h, w, k, s, ho, wo;
};

PoolDims pool_dims(const Dims& d) {
  PoolDims g{d[0], d[1], d[2], d[3], d[4], d[5], 0, 0};
  g.ho = (g.h - g.k) / g.s + 1;
  g.wo = (g.w - g.k) / g.s + 1;
  return g;
}

// Odd sizes (the last row/column is dropped), overlapping windows (k > s), k = 1, the 2x2 fast
// path, and one large enough for the parallel loop.
const std::vector<Dims> kPoolShapes = {{1, 1, 2, 2, 2, 2},   {2, 3, 8, 8, 2, 2}, {2, 3, 7, 9, 2, 2},
                                       {2, 2, 7, 7, 3, 2},   {1, 2, 5, 5, 3, 1}, {2, 1, 6, 6, 1, 1},
                                       {8, 16, 28, 28, 2, 2}};

// Row-major scan of each window; an element replaces the maximum when larger or NaN (PyTorch's
// rule, so NaN propagates). argmax is the index within the (H, W) plane.
void pool_reference(const PoolDims& g, const std::vector<double>& x, std::vector<double>& y,
                    std::vector<double>& arg) {
  y.assign(static_cast<size_t>(g.n * g.c * g.ho * g.wo), 0.0);
  arg.assign(y.size(), 0.0);
  for (int64_t pl = 0; pl < g.n * g.c; ++pl)
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t ow = 0; ow < g.wo; ++ow) {
        double best = 0;
        int64_t bi = -1;
        for (int64_t i = 0; i < g.k; ++i)
          for (int64_t j = 0; j < g.k; ++j) {
            const int64_t at = (oh * g.s + i) * g.w + ow * g.s + j;
            const double v = x[pl * g.h * g.w + at];
            if (bi < 0 || v > best || std::isnan(v)) {
              best = v;
              bi = at;
            }
          }
        y[(pl * g.ho + oh) * g.wo + ow] = best;
        arg[(pl * g.ho + oh) * g.wo + ow] = static_cast<double>(bi);
      }
}

// `with_nan`: a few inputs are NaN, which must win their windows.
OpCase maxpool_forward_case(bool with_nan) {
  OpCase c;
  c.name = with_nan ? "maxpool2d_forward_nan" : "maxpool2d_forward";
  c.dims_meaning = "N, C, H, W, kernel, stride";
  c.shapes = kPoolShapes;
  c.make_inputs = [=](const Dims& d, DType t, uint64_t seed) {
    PoolDims g = pool_dims(d);
    Tensor x = rnd(Shape{g.n, g.c, g.h, g.w}, t, seed, 0);
    if (with_nan) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      for (int64_t i = 3; i < x.numel(); i += 17) {
        if (t == DType::f32)
          x.data<float>()[i] = static_cast<float>(nan);
        else
          x.data<double>()[i] = nan;
      }
    }
    return std::vector<Tensor>{x};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    PoolDims g = pool_dims(d);
    Tensor y = poisoned(dev, Shape{g.n, g.c, g.ho, g.wo}, in[0].dtype());
    Tensor arg = poisoned(dev, y.shape(), DType::i32);
    ops.maxpool2d_forward(on(dev, in[0]), y, arg, g.k, g.s);
    return OpOutputs{read("y", y), read("argmax", arg, true)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    std::vector<double> y, arg;
    pool_reference(pool_dims(d), values(in[0]), y, arg);
    return OpOutputs{{"y", y}, {"argmax", arg, true}};
  };
  return c;
}

// argmax comes from the reference forward over random x; with overlapping windows one input
// can be chosen by several windows, so the gradient must add up.
OpCase maxpool_backward_case() {
  OpCase c;
  c.name = "maxpool2d_backward";
  c.dims_meaning = "N, C, H, W, kernel, stride";
  c.shapes = kPoolShapes;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    PoolDims g = pool_dims(d);
    std::vector<double> y, arg;
    pool_reference(g, values(rnd(Shape{g.n, g.c, g.h, g.w}, t, seed, 0)), y, arg);
    std::vector<int32_t> a(arg.begin(), arg.end());
    return std::vector<Tensor>{rnd(Shape{g.n, g.c, g.ho, g.wo}, t, seed, 1),
                               Tensor::from_vector(a, Shape{g.n, g.c, g.ho, g.wo})};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    PoolDims g = pool_dims(d);
    Tensor dx = poisoned(dev, Shape{g.n, g.c, g.h, g.w}, in[0].dtype());
    ops.maxpool2d_backward(on(dev, in[0]), on(dev, in[1]), dx);
    return OpOutputs{read("dx", dx)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    PoolDims g = pool_dims(d);
    std::vector<double> dy = values(in[0]), arg = values(in[1]);
    std::vector<double> dx(static_cast<size_t>(g.n * g.c * g.h * g.w), 0.0);
    for (int64_t pl = 0; pl < g.n * g.c; ++pl)
      for (int64_t i = 0; i < g.ho * g.wo; ++i) {
        const int64_t at = static_cast<int64_t>(arg[pl * g.ho * g.wo + i]);
        dx[pl * g.h * g.w + at] += dy[pl * g.ho * g.wo + i];
      }
    return OpOutputs{{"dx", dx}};
  };
  return c;
}

// ---- activations ----------------------------------------------------------------------------

constexpr double kGeluC = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluA = 0.044715;

// A unary op: y = f(x) or dx = f(x, dy), with x drawn from [lo, hi).
OpCase unary_case(std::string name, double lo, double hi, bool backward,
                  void (Ops::*op1)(const Tensor&, Tensor&),
                  void (Ops::*op2)(const Tensor&, const Tensor&, Tensor&),
                  double (*f)(double x, double dy)) {
  OpCase c;
  c.name = std::move(name);
  c.dims_meaning = "tensor shape";
  c.shapes = kPointwiseShapes;
  c.make_inputs = [=](const Dims& d, DType t, uint64_t seed) {
    const Shape s(d);
    return std::vector<Tensor>{rnd(s, t, seed, 0, lo, hi), rnd(s, t, seed, 1)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor out = poisoned(dev, in[0].shape(), in[0].dtype());
    if (backward)
      (ops.*op2)(on(dev, in[0]), on(dev, in[1]), out);
    else
      (ops.*op1)(on(dev, in[0]), out);
    return OpOutputs{read(backward ? "dx" : "y", out)};
  };
  c.reference = [=](const Dims&, const std::vector<Tensor>& in) {
    std::vector<double> x = values(in[0]), dy = values(in[1]), out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = f(x[i], dy[i]);
    return OpOutputs{{backward ? "dx" : "y", out}};
  };
  return c;
}

double relu_ref(double x, double) { return x > 0 ? x : 0.0; }
double gelu_ref(double x, double) {
  return 0.5 * x * (1.0 + std::tanh(kGeluC * (x + kGeluA * x * x * x)));
}
double gelu_grad_ref(double x, double dy) {
  const double t = std::tanh(kGeluC * (x + kGeluA * x * x * x));
  return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kGeluC * (1.0 + 3.0 * kGeluA * x * x));
}

// relu_backward reads the forward output y; about half of it is exactly 0.
OpCase relu_backward_case() {
  OpCase c = unary_case("relu_backward", -1, 1, true, nullptr, &Ops::relu_backward,
                        [](double y, double dy) { return y > 0 ? dy : 0.0; });
  auto make = c.make_inputs;
  c.make_inputs = [make](const Dims& d, DType t, uint64_t seed) {
    std::vector<Tensor> in = make(d, t, seed);
    std::vector<double> x = values(in[0]);
    for (int64_t i = 0; i < in[0].numel(); ++i) {
      if (x[i] >= 0) continue;
      if (t == DType::f32)
        in[0].data<float>()[i] = 0.0f;
      else
        in[0].data<double>()[i] = 0.0;
    }
    return in;
  };
  return c;
}

// ---- dropout --------------------------------------------------------------------------------

// The mask bit of element j of global sample s, as specified by the Ops interface: Philox over
// counter (j / 4, s low, s high ^ layer << 16, step) and key (seed low, seed high); lane j % 4;
// kept when the top 24 bits are >= p * 2^24.
bool dropout_keep(const DropoutKey& key, uint64_t s, int64_t j, float p) {
  Philox4 r = philox4x32(static_cast<uint32_t>(j / 4), static_cast<uint32_t>(s),
                         static_cast<uint32_t>(s >> 32) ^ (key.layer << 16),
                         static_cast<uint32_t>(key.step), static_cast<uint32_t>(key.seed),
                         static_cast<uint32_t>(key.seed >> 32));
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(p) * 16777216.0);
  return (r.v[j % 4] >> 8) >= threshold;
}

// The seed's high word is set, so both key words are exercised.
DropoutKey dropout_key(const Dims& d) {
  return DropoutKey{0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(d[1]), 1234, 3, d[2]};
}

float dropout_p(const Dims& d) { return static_cast<float>(d[3]) / 100.0f; }

// dims: samples, elements per sample, the first sample's global index, p in percent. The
// global index crosses 2^32 in one shape (its high word is part of the counter).
const std::vector<Dims> kDropoutShapes = {{1, 1, 0, 50},      {4, 7, 0, 10},
                                          {3, 33, 5, 25},     {8, 4, 3, 0},
                                          {5, 9, 7, 90},      {2, 5, (1ll << 32) + 3, 30},
                                          {2, 20001, 777, 50}};

OpCase dropout_forward_case() {
  OpCase c;
  c.name = "dropout_forward";
  c.dims_meaning = "N, per-sample elements, first sample, p (%)";
  c.shapes = kDropoutShapes;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape{d[0], d[1]}, t, seed, 0)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    Tensor y = poisoned(dev, in[0].shape(), in[0].dtype());
    Tensor mask = poisoned(dev, in[0].shape(), DType::u8);
    ops.dropout_forward(on(dev, in[0]), y, mask, dropout_p(d), dropout_key(d));
    return OpOutputs{read("y", y), read("mask", mask, true)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const DropoutKey key = dropout_key(d);
    const float p = dropout_p(d);
    const double scale = 1.0 / (1.0 - static_cast<double>(p));
    std::vector<double> x = values(in[0]), y(x.size()), mask(x.size());
    for (int64_t n = 0; n < d[0]; ++n)
      for (int64_t j = 0; j < d[1]; ++j) {
        const size_t i = static_cast<size_t>(n * d[1] + j);
        const bool keep = dropout_keep(key, static_cast<uint64_t>(key.first_sample + n), j, p);
        mask[i] = keep ? 1 : 0;
        y[i] = keep ? x[i] * scale : 0.0;
      }
    return OpOutputs{{"y", y}, {"mask", mask, true}};
  };
  return c;
}

OpCase dropout_backward_case() {
  OpCase c;
  c.name = "dropout_backward";
  c.dims_meaning = "N, per-sample elements, (unused), p (%)";
  c.shapes = kDropoutShapes;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    const Shape s{d[0], d[1]};
    return std::vector<Tensor>{rnd(s, t, seed, 0), random_mask(s, seed)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    Tensor dx = poisoned(dev, in[0].shape(), in[0].dtype());
    ops.dropout_backward(on(dev, in[0]), on(dev, in[1]), dx, dropout_p(d));
    return OpOutputs{read("dx", dx)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const double scale = 1.0 / (1.0 - static_cast<double>(dropout_p(d)));
    std::vector<double> dy = values(in[0]), mask = values(in[1]), dx(dy.size());
    for (size_t i = 0; i < dy.size(); ++i) dx[i] = mask[i] != 0 ? dy[i] * scale : 0.0;
    return OpOutputs{{"dx", dx}};
  };
  return c;
}

// ---- softmax cross-entropy ------------------------------------------------------------------

constexpr float kXentScale = 0.25f;

// dims: rows, classes, logit range. Range 150 overflows exp() in f32 unless the row maximum is
// subtracted first. One shape is above the size where the CPU kernel goes parallel.
OpCase softmax_xent_case(bool with_grad) {
  OpCase c;
  c.name = with_grad ? "softmax_xent" : "softmax_xent_stats_only";
  c.dims_meaning = "N, C, logit range";
  c.shapes = {{1, 1, 4}, {1, 10, 4}, {5, 3, 4}, {64, 10, 4}, {300, 257, 4}, {7, 10, 150}};
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    const double r = static_cast<double>(d[2]);
    return std::vector<Tensor>{rnd(Shape{d[0], d[1]}, t, seed, 0, -r, r),
                               random_labels(d[0], d[1], seed)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor dl = poisoned(dev, in[0].shape(), in[0].dtype());
    Tensor stats = poisoned(dev, Shape{2}, DType::f64);
    ops.softmax_xent(on(dev, in[0]), on(dev, in[1]), with_grad ? &dl : nullptr, kXentScale, stats);
    std::vector<double> s = values(stats.to(cpu_device()));
    OpOutputs out{{"loss_sum", {s[0]}}, {"correct", {s[1]}, true}};
    if (with_grad) out.push_back(read("dlogits", dl));
    return out;
  };
  c.reference = [=](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t n = d[0], k = d[1];
    std::vector<double> z = values(in[0]), label = values(in[1]), dl(z.size());
    double loss = 0, correct = 0;
    for (int64_t r = 0; r < n; ++r) {
      const double* row = &z[r * k];
      int64_t arg = 0;
      for (int64_t j = 1; j < k; ++j) {
        if (row[j] > row[arg]) arg = j;
      }
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += std::exp(row[j] - row[arg]);
      const int64_t y = static_cast<int64_t>(label[r]);
      loss += row[arg] + std::log(sum) - row[y];
      correct += arg == y ? 1 : 0;
      for (int64_t j = 0; j < k; ++j) {
        dl[r * k + j] = kXentScale * (std::exp(row[j] - row[arg]) / sum - (j == y ? 1.0 : 0.0));
      }
    }
    OpOutputs out{{"loss_sum", {loss}}, {"correct", {correct}, true}};
    if (with_grad) out.push_back({"dlogits", dl});
    return out;
  };
  return c;
}

}  // namespace

void add_pointwise_cases(std::vector<OpCase>& out) {
  out.push_back(maxpool_forward_case(false));
  out.push_back(maxpool_forward_case(true));
  out.push_back(maxpool_backward_case());
  out.push_back(unary_case("relu_forward", -1, 1, false, &Ops::relu_forward, nullptr, relu_ref));
  out.push_back(relu_backward_case());
  // GELU over [-5, 5]: both tails and the curved middle.
  out.push_back(unary_case("gelu_forward", -5, 5, false, &Ops::gelu_forward, nullptr, gelu_ref));
  out.push_back(
      unary_case("gelu_backward", -5, 5, true, nullptr, &Ops::gelu_backward, gelu_grad_ref));
  out.push_back(dropout_forward_case());
  out.push_back(dropout_backward_case());
  out.push_back(softmax_xent_case(true));
  out.push_back(softmax_xent_case(false));
}

}  // namespace kiln::test
