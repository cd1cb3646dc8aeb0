// Op cases of the dense ops: matmul (every transpose combination, with and without beta),
// linear forward/backward and conv2d forward/backward, each with its plain-loop reference.
#include <string>

#include "op_cases.h"
#include "test_util.h"

namespace kiln::test {

namespace {

// Input i of an instance gets its own stream of random numbers.
Tensor rnd(const Shape& s, DType t, uint64_t seed, int i) {
  return random_tensor(s, t, seed * 7919 + static_cast<uint64_t>(i));
}

// ---- matmul ---------------------------------------------------------------------------------

OpCase matmul_case(bool ta, bool tb, bool accumulate) {
  const float alpha = 1.5f, beta = accumulate ? 0.5f : 0.0f;
  OpCase c;
  c.name =
      std::string("matmul_") + (ta ? "t" : "n") + (tb ? "t" : "n") + (accumulate ? "_beta" : "");
  c.dims_meaning = "M, K, N";
  c.shapes = {{1, 1, 1}, {3, 5, 2}, {1, 7, 4}, {17, 33, 9}, {64, 48, 31}};
  c.tf32 = true;
  c.f32_when_mixed = {2};  // c: mixed precision accumulates 16-bit products into f32
  c.make_inputs = [=](const Dims& d, DType t, uint64_t seed) {
    const int64_t m = d[0], k = d[1], n = d[2];
    return std::vector<Tensor>{rnd(ta ? Shape{k, m} : Shape{m, k}, t, seed, 0),
                               rnd(tb ? Shape{n, k} : Shape{k, n}, t, seed, 1),
                               rnd(Shape{m, n}, t, seed, 2)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor a = on(dev, in[0]), b = on(dev, in[1]);
    // With beta = 0 the op must not read c: start from NaN to prove it.
    Tensor out = accumulate ? on(dev, in[2]) : poisoned(dev, in[2].shape(), in[2].dtype());
    ops.matmul(a, ta, b, tb, out, alpha, beta);
    return OpOutputs{read("c", out)};
  };
  c.reference = [=](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t m = d[0], k = d[1], n = d[2];
    std::vector<double> a = values(in[0]), b = values(in[1]), c0 = values(in[2]);
    std::vector<double> out(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q) {
          const double av = ta ? a[q * m + i] : a[i * k + q];
          const double bv = tb ? b[j * k + q] : b[q * n + j];
          s += av * bv;
        }
        out[i * n + j] = alpha * s + (accumulate ? beta * c0[i * n + j] : 0.0);
      }
    }
    return OpOutputs{{"c", out}};
  };
  return c;
}

// ---- linear ---------------------------------------------------------------------------------

const std::vector<Dims> kLinearShapes = {{1, 1, 1}, {3, 7, 5}, {16, 33, 10}, {5, 1, 9}};

OpCase linear_forward_case() {
  OpCase c;
  c.name = "linear_forward";
  c.dims_meaning = "N, in, out";
  c.shapes = kLinearShapes;
  c.tf32 = true;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape{d[0], d[1]}, t, seed, 0),
                               rnd(Shape{d[2], d[1]}, t, seed, 1), rnd(Shape{d[2]}, t, seed, 2)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    Tensor y = poisoned(dev, Shape{d[0], d[2]}, in[0].dtype());
    ops.linear_forward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), y);
    return OpOutputs{read("y", y)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t n = d[0], fi = d[1], fo = d[2];
    std::vector<double> x = values(in[0]), w = values(in[1]), b = values(in[2]);
    std::vector<double> y(static_cast<size_t>(n * fo));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t o = 0; o < fo; ++o) {
        double s = b[o];
        for (int64_t i = 0; i < fi; ++i) s += x[r * fi + i] * w[o * fi + i];
        y[r * fo + o] = s;
      }
    }
    return OpOutputs{{"y", y}};
  };
  return c;
}

// dw and db start from random values: the op accumulates into them.
OpCase linear_backward_case(bool need_dx) {
  OpCase c;
  c.name = need_dx ? "linear_backward" : "linear_backward_no_dx";
  c.dims_meaning = "N, in, out";
  c.shapes = kLinearShapes;
  c.tf32 = true;
  c.f32_when_mixed = {3, 4};  // dw, db
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    const int64_t n = d[0], fi = d[1], fo = d[2];
    return std::vector<Tensor>{rnd(Shape{n, fi}, t, seed, 0), rnd(Shape{fo, fi}, t, seed, 1),
                               rnd(Shape{n, fo}, t, seed, 2), rnd(Shape{fo, fi}, t, seed, 3),
                               rnd(Shape{fo}, t, seed, 4)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor dx = poisoned(dev, in[0].shape(), in[0].dtype());
    Tensor dw = on(dev, in[3]), db = on(dev, in[4]);
    ops.linear_backward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), need_dx ? &dx : nullptr, dw,
                        db);
    OpOutputs out{read("dw", dw), read("db", db)};
    if (need_dx) out.push_back(read("dx", dx));
    return out;
  };
  c.reference = [=](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t n = d[0], fi = d[1], fo = d[2];
    std::vector<double> x = values(in[0]), w = values(in[1]), dy = values(in[2]);
    std::vector<double> dw = values(in[3]), db = values(in[4]);
    std::vector<double> dx(static_cast<size_t>(n * fi), 0.0);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t o = 0; o < fo; ++o) {
        const double g = dy[r * fo + o];
        db[o] += g;
        for (int64_t i = 0; i < fi; ++i) {
          dw[o * fi + i] += g * x[r * fi + i];
          dx[r * fi + i] += g * w[o * fi + i];
        }
      }
    }
    OpOutputs out{{"dw", dw}, {"db", db}};
    if (need_dx) out.push_back({"dx", dx});
    return out;
  };
  return c;
}

// ---- conv2d ---------------------------------------------------------------------------------

struct ConvDims {
  int64_t n, c, h, w, o, kh, kw, stride, pad, ho, wo;
};

ConvDims conv_dims(const Dims& d) {
  ConvDims g{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], 0, 0};
  g.ho = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
  g.wo = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
  return g;
}

// Odd sizes, strides 1-3, padding 0-2, a non-square kernel, 1x1, and one batch large enough
// that the CPU kernel splits it into several im2col chunks (in f32 and in f64).
const std::vector<Dims> kConvShapes = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0}, {2, 3, 7, 5, 4, 3, 3, 1, 1}, {2, 3, 7, 5, 4, 3, 3, 2, 0},
    {3, 2, 9, 8, 5, 3, 3, 2, 1}, {1, 4, 6, 6, 3, 1, 1, 1, 0}, {2, 1, 5, 5, 2, 5, 5, 1, 2},
    {2, 2, 6, 7, 3, 3, 2, 1, 1}, {1, 3, 4, 4, 2, 3, 3, 3, 1}, {80, 16, 24, 24, 4, 3, 3, 1, 1}};
const char* kConvMeaning = "N, C, H, W, O, kh, kw, stride, pad";

// Index of x[n][c][ih][iw] when (ih, iw) is inside the image, else -1 (zero padding).
int64_t x_at(const ConvDims& g, int64_t n, int64_t c, int64_t ih, int64_t iw) {
  if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return -1;
  return ((n * g.c + c) * g.h + ih) * g.w + iw;
}

OpCase conv2d_forward_case() {
  OpCase c;
  c.name = "conv2d_forward";
  c.dims_meaning = kConvMeaning;
  c.shapes = kConvShapes;
  c.tf32 = true;
  c.offset_views = false;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    ConvDims g = conv_dims(d);
    return std::vector<Tensor>{rnd(Shape{g.n, g.c, g.h, g.w}, t, seed, 0),
                               rnd(Shape{g.o, g.c, g.kh, g.kw}, t, seed, 1),
                               rnd(Shape{g.o}, t, seed, 2)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    ConvDims g = conv_dims(d);
    Tensor y = poisoned(dev, Shape{g.n, g.o, g.ho, g.wo}, in[0].dtype());
    ops.conv2d_forward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), y,
                       Conv2dParams{g.stride, g.pad});
    return OpOutputs{read("y", y)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    ConvDims g = conv_dims(d);
    std::vector<double> x = values(in[0]), w = values(in[1]), b = values(in[2]);
    std::vector<double> y(static_cast<size_t>(g.n * g.o * g.ho * g.wo));
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t o = 0; o < g.o; ++o)
        for (int64_t oh = 0; oh < g.ho; ++oh)
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            double s = b[o];
            for (int64_t ch = 0; ch < g.c; ++ch)
              for (int64_t i = 0; i < g.kh; ++i)
                for (int64_t j = 0; j < g.kw; ++j) {
                  const int64_t at =
                      x_at(g, n, ch, oh * g.stride - g.pad + i, ow * g.stride - g.pad + j);
                  if (at >= 0) s += x[at] * w[((o * g.c + ch) * g.kh + i) * g.kw + j];
                }
            y[((n * g.o + o) * g.ho + oh) * g.wo + ow] = s;
          }
    return OpOutputs{{"y", y}};
  };
  return c;
}

OpCase conv2d_backward_case(bool need_dx) {
  OpCase c;
  c.name = need_dx ? "conv2d_backward" : "conv2d_backward_no_dx";
  c.dims_meaning = kConvMeaning;
  c.shapes = kConvShapes;
  c.tf32 = true;
  c.offset_views = false;
  c.f32_when_mixed = {3, 4};  // dw, db
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    ConvDims g = conv_dims(d);
    return std::vector<Tensor>{
        rnd(Shape{g.n, g.c, g.h, g.w}, t, seed, 0), rnd(Shape{g.o, g.c, g.kh, g.kw}, t, seed, 1),
        rnd(Shape{g.n, g.o, g.ho, g.wo}, t, seed, 2), rnd(Shape{g.o, g.c, g.kh, g.kw}, t, seed, 3),
        rnd(Shape{g.o}, t, seed, 4)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    ConvDims g = conv_dims(d);
    Tensor dx = poisoned(dev, in[0].shape(), in[0].dtype());
    Tensor dw = on(dev, in[3]), db = on(dev, in[4]);
    ops.conv2d_backward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), need_dx ? &dx : nullptr, dw,
                        db, Conv2dParams{g.stride, g.pad});
    OpOutputs out{read("dw", dw), read("db", db)};
    if (need_dx) out.push_back(read("dx", dx));
    return out;
  };
  c.reference = [=](const Dims& d, const std::vector<Tensor>& in) {
    ConvDims g = conv_dims(d);
    std::vector<double> x = values(in[0]), w = values(in[1]), dy = values(in[2]);
    std::vector<double> dw = values(in[3]), db = values(in[4]);
    std::vector<double> dx(x.size(), 0.0);
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t o = 0; o < g.o; ++o)
        for (int64_t oh = 0; oh < g.ho; ++oh)
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            const double gy = dy[((n * g.o + o) * g.ho + oh) * g.wo + ow];
            db[o] += gy;
            for (int64_t ch = 0; ch < g.c; ++ch)
              for (int64_t i = 0; i < g.kh; ++i)
                for (int64_t j = 0; j < g.kw; ++j) {
                  const int64_t at =
                      x_at(g, n, ch, oh * g.stride - g.pad + i, ow * g.stride - g.pad + j);
                  if (at < 0) continue;
                  const int64_t wi = ((o * g.c + ch) * g.kh + i) * g.kw + j;
                  dw[wi] += gy * x[at];
                  dx[at] += gy * w[wi];
                }
          }
    OpOutputs out{{"dw", dw}, {"db", db}};
    if (need_dx) out.push_back({"dx", dx});
    return out;
  };
  return c;
}

}  // namespace

void add_dense_cases(std::vector<OpCase>& out) {
  for (bool accumulate : {false, true}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) out.push_back(matmul_case(ta, tb, accumulate));
    }
  }
  out.push_back(linear_forward_case());
  out.push_back(linear_backward_case(true));
  out.push_back(linear_backward_case(false));
  out.push_back(conv2d_forward_case());
  out.push_back(conv2d_backward_case(true));
  out.push_back(conv2d_backward_case(false));
}

}  // namespace kiln::test
