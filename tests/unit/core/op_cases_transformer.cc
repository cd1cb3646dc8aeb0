// Op cases of the transformer ops (GPT): token + position embedding, layer normalisation,
// causal multi-head attention and the residual add, each with its plain-loop reference in
// double. Shapes repeat tokens (scatter-adds that could race), cross the CPU attention kernel's
// 64-row blocks (T = 70, 130) and the GPU row kernels' thread counts (C >= 128, 256).
#include <cmath>
#include <string>

#include "core/rng.h"
#include "op_cases.h"
#include "test_util.h"

namespace kiln::test {

namespace {

Tensor rnd(const Shape& s, DType t, uint64_t seed, int i, double lo = -1.0, double hi = 1.0) {
  return random_tensor(s, t, seed * 4099 + static_cast<uint64_t>(i), lo, hi);
}

Tensor random_tokens(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Rng rng(seed, 5);
  std::vector<int32_t> t(static_cast<size_t>(B * T));
  for (int32_t& x : t) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return Tensor::from_vector(t, Shape{B, T});
}

// The CPU suite checks f32 layernorm and attention against double with the margin the
// transcendental approximations need (exp within 2 ulp, then sums of up to T of them).
constexpr Tolerance kTransformerF32{2e-5, 2e-6};

// ---- embedding ------------------------------------------------------------------------------

// dims: B, T, V (vocabulary), P (positions >= T), C. Few token ids over many positions: repeats.
const std::vector<Dims> kEmbeddingShapes = {
    {1, 1, 1, 1, 1}, {3, 5, 7, 8, 6}, {4, 9, 3, 12, 5}, {8, 64, 5, 64, 40}, {2, 17, 50, 20, 300}};
const char* kEmbeddingMeaning = "B, T, V, P, C";

OpCase embedding_forward_case() {
  OpCase c;
  c.name = "embedding_forward";
  c.dims_meaning = kEmbeddingMeaning;
  c.shapes = kEmbeddingShapes;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{random_tokens(d[0], d[1], d[2], seed),
                               rnd(Shape{d[2], d[4]}, t, seed, 1),
                               rnd(Shape{d[3], d[4]}, t, seed, 2)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    Tensor y = poisoned(dev, Shape{d[0], d[1], d[4]}, in[1].dtype());
    ops.embedding_forward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), y);
    return OpOutputs{read("y", y)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t T = d[1], C = d[4];
    std::vector<double> tok = values(in[0]), wte = values(in[1]), wpe = values(in[2]);
    std::vector<double> y;
    for (size_t r = 0; r < tok.size(); ++r) {
      const int64_t id = static_cast<int64_t>(tok[r]), t = static_cast<int64_t>(r) % T;
      for (int64_t ch = 0; ch < C; ++ch) y.push_back(wte[id * C + ch] + wpe[t * C + ch]);
    }
    return OpOutputs{{"y", y}};
  };
  return c;
}

// dwte and dwpe start from random values: the op accumulates into them.
OpCase embedding_backward_case() {
  OpCase c;
  c.name = "embedding_backward";
  c.dims_meaning = kEmbeddingMeaning;
  c.shapes = kEmbeddingShapes;
  c.f32_when_mixed = {2, 3};
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{
        random_tokens(d[0], d[1], d[2], seed), rnd(Shape{d[0], d[1], d[4]}, t, seed, 1),
        rnd(Shape{d[2], d[4]}, t, seed, 2), rnd(Shape{d[3], d[4]}, t, seed, 3)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor dwte = on(dev, in[2]), dwpe = on(dev, in[3]);
    ops.embedding_backward(on(dev, in[0]), on(dev, in[1]), dwte, dwpe);
    return OpOutputs{read("dwte", dwte), read("dwpe", dwpe)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t T = d[1], C = d[4];
    std::vector<double> tok = values(in[0]), dy = values(in[1]);
    std::vector<double> dwte = values(in[2]), dwpe = values(in[3]);
    for (size_t r = 0; r < tok.size(); ++r) {
      const int64_t id = static_cast<int64_t>(tok[r]), t = static_cast<int64_t>(r) % T;
      for (int64_t ch = 0; ch < C; ++ch) {
        dwte[id * C + ch] += dy[r * C + ch];
        dwpe[t * C + ch] += dy[r * C + ch];  // positions >= T keep their values
      }
    }
    return OpOutputs{{"dwte", dwte}, {"dwpe", dwpe}};
  };
  return c;
}

// ---- layer normalisation --------------------------------------------------------------------

constexpr float kLnEps = 1e-5f;
// dims: N rows, C channels. C = 1 has zero variance (rstd = 1 / sqrt(eps), y = b).
const std::vector<Dims> kLayerNormShapes = {{1, 1}, {3, 7}, {37, 48}, {6, 300}, {129, 130}};

// mean and rstd of each row in double (biased variance, as torch.nn.LayerNorm).
void ln_stats(const std::vector<double>& x, int64_t N, int64_t C, std::vector<double>& mean,
              std::vector<double>& rstd) {
  mean.assign(static_cast<size_t>(N), 0.0);
  rstd.assign(static_cast<size_t>(N), 0.0);
  for (int64_t r = 0; r < N; ++r) {
    double m = 0, v = 0;
    for (int64_t ch = 0; ch < C; ++ch) m += x[r * C + ch];
    m /= static_cast<double>(C);
    for (int64_t ch = 0; ch < C; ++ch) v += (x[r * C + ch] - m) * (x[r * C + ch] - m);
    mean[r] = m;
    rstd[r] = 1.0 / std::sqrt(v / static_cast<double>(C) + static_cast<double>(kLnEps));
  }
}

OpCase layernorm_forward_case() {
  OpCase c;
  c.name = "layernorm_forward";
  c.dims_meaning = "N, C";
  c.shapes = kLayerNormShapes;
  c.f32 = kTransformerF32;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape{d[0], d[1]}, t, seed, 0, -2.0, 3.0),
                               rnd(Shape{d[1]}, t, seed, 1), rnd(Shape{d[1]}, t, seed, 2)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    const DType t = in[0].dtype();
    Tensor y = poisoned(dev, in[0].shape(), t);
    Tensor mean = poisoned(dev, Shape{d[0]}, t), rstd = poisoned(dev, Shape{d[0]}, t);
    ops.layernorm_forward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), y, mean, rstd, kLnEps);
    return OpOutputs{read("y", y), read("mean", mean), read("rstd", rstd)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t N = d[0], C = d[1];
    std::vector<double> x = values(in[0]), w = values(in[1]), b = values(in[2]), mean, rstd;
    ln_stats(x, N, C, mean, rstd);
    std::vector<double> y(x.size());
    for (int64_t r = 0; r < N; ++r) {
      for (int64_t ch = 0; ch < C; ++ch) {
        y[r * C + ch] = (x[r * C + ch] - mean[r]) * rstd[r] * w[ch] + b[ch];
      }
    }
    return OpOutputs{{"y", y}, {"mean", mean}, {"rstd", rstd}};
  };
  return c;
}

// Inputs: x, w, mean, rstd (the forward's, from the reference), dy, dx (accumulated onto when
// `accumulate`), dw, db (accumulated onto).
OpCase layernorm_backward_case(bool accumulate) {
  OpCase c;
  c.name = accumulate ? "layernorm_backward_accumulate" : "layernorm_backward";
  c.dims_meaning = "N, C";
  c.shapes = kLayerNormShapes;
  c.f32 = kTransformerF32;
  c.f32_when_mixed = {6, 7};
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    const int64_t N = d[0], C = d[1];
    Tensor x = rnd(Shape{N, C}, t, seed, 0, -1.0, 2.0);
    std::vector<double> mean, rstd;
    ln_stats(values(x), N, C, mean, rstd);
    return std::vector<Tensor>{x,
                               rnd(Shape{C}, t, seed, 1),
                               from_doubles(mean, Shape{N}, t),
                               from_doubles(rstd, Shape{N}, t),
                               rnd(Shape{N, C}, t, seed, 4),
                               rnd(Shape{N, C}, t, seed, 5),
                               rnd(Shape{C}, t, seed, 6),
                               rnd(Shape{C}, t, seed, 7)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor dx = accumulate ? on(dev, in[5]) : poisoned(dev, in[5].shape(), in[5].dtype());
    Tensor dw = on(dev, in[6]), db = on(dev, in[7]);
    ops.layernorm_backward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), on(dev, in[3]),
                           on(dev, in[4]), dx, dw, db, accumulate);
    return OpOutputs{read("dx", dx), read("dw", dw), read("db", db)};
  };
  // With xhat = (x - mean) rstd and g = dy w: dx = rstd (g - mean(g) - xhat mean(g xhat)),
  // dw += sum over rows of dy xhat, db += sum over rows of dy.
  c.reference = [=](const Dims& d, const std::vector<Tensor>& in) {
    const int64_t N = d[0], C = d[1];
    std::vector<double> x = values(in[0]), w = values(in[1]), mean = values(in[2]);
    std::vector<double> rstd = values(in[3]), dy = values(in[4]), dx = values(in[5]);
    std::vector<double> dw = values(in[6]), db = values(in[7]);
    for (int64_t r = 0; r < N; ++r) {
      double mg = 0, mgx = 0;
      for (int64_t ch = 0; ch < C; ++ch) {
        const double xhat = (x[r * C + ch] - mean[r]) * rstd[r], g = dy[r * C + ch] * w[ch];
        mg += g / static_cast<double>(C);
        mgx += g * xhat / static_cast<double>(C);
        dw[ch] += dy[r * C + ch] * xhat;
        db[ch] += dy[r * C + ch];
      }
      for (int64_t ch = 0; ch < C; ++ch) {
        const double xhat = (x[r * C + ch] - mean[r]) * rstd[r];
        const double v = rstd[r] * (dy[r * C + ch] * w[ch] - mg - xhat * mgx);
        dx[r * C + ch] = accumulate ? dx[r * C + ch] + v : v;
      }
    }
    return OpOutputs{{"dx", dx}, {"dw", dw}, {"db", db}};
  };
  return c;
}

// ---- attention ------------------------------------------------------------------------------

// dims: B, T, C, heads. One head of 1 channel, T crossing one and two 64-row blocks, a head
// size of 64 (as GPT-2's).
const std::vector<Dims> kAttentionShapes = {
    {1, 1, 2, 1}, {2, 5, 12, 3}, {2, 70, 12, 3}, {1, 130, 16, 2}, {1, 65, 128, 2}};
const char* kAttentionMeaning = "B, T, C, heads";

struct AttnDims {
  int64_t B, T, C, H, hs;
  // Index of qkv[b, t, part * C + h * hs + d].
  int64_t at(int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) const {
    return (b * T + t) * 3 * C + part * C + h * hs + d;
  }
  // Index of out[b, t, h * hs + d].
  int64_t out_at(int64_t b, int64_t t, int64_t h, int64_t d) const {
    return (b * T + t) * C + h * hs + d;
  }
};
AttnDims attn_dims(const Dims& d) { return AttnDims{d[0], d[1], d[2], d[3], d[2] / d[3]}; }

// Scaled score of query i against key j of head (b, h).
double score(const AttnDims& a, const std::vector<double>& qkv, int64_t b, int64_t h, int64_t i,
             int64_t j) {
  double s = 0;
  for (int64_t d = 0; d < a.hs; ++d) s += qkv[a.at(b, i, 0, h, d)] * qkv[a.at(b, j, 1, h, d)];
  return s / std::sqrt(static_cast<double>(a.hs));
}

// out (B, T, C) and lse (B, H, T) of causal attention over qkv, in double.
void attention_reference(const AttnDims& a, const std::vector<double>& qkv,
                         std::vector<double>& out, std::vector<double>& lse) {
  out.assign(static_cast<size_t>(a.B * a.T * a.C), 0.0);
  lse.assign(static_cast<size_t>(a.B * a.H * a.T), 0.0);
  for (int64_t b = 0; b < a.B; ++b) {
    for (int64_t h = 0; h < a.H; ++h) {
      for (int64_t i = 0; i < a.T; ++i) {
        std::vector<double> p(static_cast<size_t>(i + 1));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j <= i; ++j) mx = std::max(mx, p[j] = score(a, qkv, b, h, i, j));
        for (double& v : p) sum += (v = std::exp(v - mx));
        lse[(b * a.H + h) * a.T + i] = mx + std::log(sum);
        for (int64_t d = 0; d < a.hs; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += p[j] / sum * qkv[a.at(b, j, 2, h, d)];
          out[a.out_at(b, i, h, d)] = acc;
        }
      }
    }
  }
}

OpCase attention_forward_case() {
  OpCase c;
  c.name = "attention_forward";
  c.dims_meaning = kAttentionMeaning;
  c.shapes = kAttentionShapes;
  c.f32 = kTransformerF32;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape{d[0], d[1], 3 * d[2]}, t, seed, 0, -2.0, 2.0)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    const DType t = in[0].dtype();
    Tensor out = poisoned(dev, Shape{d[0], d[1], d[2]}, t);
    Tensor lse = poisoned(dev, Shape{d[0], d[3], d[1]}, t);
    ops.attention_forward(on(dev, in[0]), out, lse, d[3]);
    return OpOutputs{read("out", out), read("lse", lse)};
  };
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    std::vector<double> out, lse;
    attention_reference(attn_dims(d), values(in[0]), out, lse);
    return OpOutputs{{"out", out}, {"lse", lse}};
  };
  return c;
}

// Inputs: qkv, the forward's out and lse (from the reference), dout. dqkv is overwritten.
OpCase attention_backward_case() {
  OpCase c;
  c.name = "attention_backward";
  c.dims_meaning = kAttentionMeaning;
  c.shapes = kAttentionShapes;
  c.f32 = kTransformerF32;
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    Tensor qkv = rnd(Shape{d[0], d[1], 3 * d[2]}, t, seed, 0, -2.0, 2.0);
    std::vector<double> out, lse;
    attention_reference(attn_dims(d), values(qkv), out, lse);
    return std::vector<Tensor>{qkv, from_doubles(out, Shape{d[0], d[1], d[2]}, t),
                               from_doubles(lse, Shape{d[0], d[3], d[1]}, t),
                               rnd(Shape{d[0], d[1], d[2]}, t, seed, 3)};
  };
  c.run = [](Ops& ops, Device& dev, const Dims& d, const std::vector<Tensor>& in) {
    Tensor dqkv = poisoned(dev, in[0].shape(), in[0].dtype());
    ops.attention_backward(on(dev, in[0]), on(dev, in[1]), on(dev, in[2]), on(dev, in[3]), dqkv,
                           d[3]);
    return OpOutputs{read("dqkv", dqkv)};
  };
  // From the saved lse and out, as the contract says: P_ij = exp(s_ij - lse_i),
  // D_i = dout_i . out_i, dS_ij = P_ij (dout_i . v_j - D_i); dq_i = sum_j dS_ij k_j / sqrt(hs),
  // dk_j = sum_i dS_ij q_i / sqrt(hs), dv_j = sum_i P_ij dout_i.
  c.reference = [](const Dims& d, const std::vector<Tensor>& in) {
    const AttnDims a = attn_dims(d);
    std::vector<double> qkv = values(in[0]), out = values(in[1]), lse = values(in[2]);
    std::vector<double> g = values(in[3]), dqkv(qkv.size(), 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(a.hs));
    for (int64_t b = 0; b < a.B; ++b) {
      for (int64_t h = 0; h < a.H; ++h) {
        for (int64_t i = 0; i < a.T; ++i) {
          double D = 0;
          for (int64_t e = 0; e < a.hs; ++e)
            D += g[a.out_at(b, i, h, e)] * out[a.out_at(b, i, h, e)];
          for (int64_t j = 0; j <= i; ++j) {
            const double p = std::exp(score(a, qkv, b, h, i, j) - lse[(b * a.H + h) * a.T + i]);
            double dp = 0;
            for (int64_t e = 0; e < a.hs; ++e)
              dp += g[a.out_at(b, i, h, e)] * qkv[a.at(b, j, 2, h, e)];
            const double ds = p * (dp - D) * scale;
            for (int64_t e = 0; e < a.hs; ++e) {
              dqkv[a.at(b, i, 0, h, e)] += ds * qkv[a.at(b, j, 1, h, e)];
              dqkv[a.at(b, j, 1, h, e)] += ds * qkv[a.at(b, i, 0, h, e)];
              dqkv[a.at(b, j, 2, h, e)] += p * g[a.out_at(b, i, h, e)];
            }
          }
        }
      }
    }
    return OpOutputs{{"dqkv", dqkv}};
  };
  return c;
}

// ---- residual add ---------------------------------------------------------------------------

enum class AddInto { y, a, b };

// y = a + b, with y a fresh tensor or a or b itself (the residual stream adds in place).
OpCase add_case(AddInto into) {
  OpCase c;
  c.name = into == AddInto::y ? "add" : into == AddInto::a ? "add_into_a" : "add_into_b";
  c.dims_meaning = "tensor shape";
  c.shapes = {{1}, {7}, {3, 5, 7}, {2, 20001}};
  c.make_inputs = [](const Dims& d, DType t, uint64_t seed) {
    return std::vector<Tensor>{rnd(Shape(d), t, seed, 0), rnd(Shape(d), t, seed, 1)};
  };
  c.run = [=](Ops& ops, Device& dev, const Dims&, const std::vector<Tensor>& in) {
    Tensor a = on(dev, in[0]), b = on(dev, in[1]);
    Tensor y = into == AddInto::y   ? poisoned(dev, a.shape(), a.dtype())
               : into == AddInto::a ? a
                                    : b;
    ops.add(a, b, y);
    return OpOutputs{read("y", y)};
  };
  c.reference = [](const Dims&, const std::vector<Tensor>& in) {
    std::vector<double> y = values(in[0]), b = values(in[1]);
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
    return OpOutputs{{"y", y}};
  };
  return c;
}

}  // namespace

void add_transformer_cases(std::vector<OpCase>& out) {
  out.push_back(embedding_forward_case());
  out.push_back(embedding_backward_case());
  out.push_back(layernorm_forward_case());
  out.push_back(layernorm_backward_case(false));
  out.push_back(layernorm_backward_case(true));
  out.push_back(attention_forward_case());
  out.push_back(attention_backward_case());
  out.push_back(add_case(AddInto::y));
  out.push_back(add_case(AddInto::a));
  out.push_back(add_case(AddInto::b));
}

}  // namespace kiln::test
