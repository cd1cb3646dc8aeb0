// The transformer ops of core/ops.h on the CPU: each against a plain-loop reference computed
// in double (f32 and f64), and each backward against central finite differences in f64.
// Shapes cross the attention kernel's 64-row blocks (T = 70) and repeat tokens, where
// scatter-adds could race.
#include <cmath>
#include <functional>

#include "core/kernels/cpu/cpu_ops.h"
#include "core/rng.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

using test::all_close;
using test::as_doubles;
using test::random_tensor;

Ops& ops() { return cpu_device().ops(); }

Tensor from_doubles(const std::vector<double>& v, const Shape& s, DType dt) {
  if (dt == DType::f64) return Tensor::from_vector(v, s);
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), s);
}

Tensor random_tokens(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Rng rng(seed, 5);
  std::vector<int32_t> t(static_cast<size_t>(B * T));
  for (int32_t& x : t) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return Tensor::from_vector(t, Shape{B, T});
}

// Central differences of loss() with respect to every element of x (f64), step h.
std::vector<double> numeric_grad(Tensor& x, const std::function<double()>& loss, double h) {
  double* p = x.data<double>();
  std::vector<double> g(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = loss();
    p[i] = keep - h;
    const double down = loss();
    p[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

double dot(const Tensor& a, const std::vector<double>& b) {
  std::vector<double> x = as_doubles(a);
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * b[i];
  return s;
}

// ---- references ------------------------------------------------------------------------

std::vector<double> ref_layernorm(const std::vector<double>& x, const std::vector<double>& w,
                                  const std::vector<double>& b, int64_t N, int64_t C,
                                  std::vector<double>* mean, std::vector<double>* rstd) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < N; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += x[r * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) v += (x[r * C + c] - m) * (x[r * C + c] - m);
    const double rs = 1.0 / std::sqrt(v / C + 1e-5);
    for (int64_t c = 0; c < C; ++c) y[r * C + c] = (x[r * C + c] - m) * rs * w[c] + b[c];
    if (mean) mean->push_back(m);
    if (rstd) rstd->push_back(rs);
  }
  return y;
}

// out (B, T, C) and lse (B, H, T) of causal attention over qkv (B, T, 3C), all in double.
void ref_attention(const std::vector<double>& qkv, int64_t B, int64_t T, int64_t C, int64_t H,
                   std::vector<double>* out, std::vector<double>* lse) {
  const int64_t hs = C / H;
  out->assign(static_cast<size_t>(B * T * C), 0.0);
  lse->assign(static_cast<size_t>(B * H * T), 0.0);
  auto at = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) {
    return qkv[(b * T + t) * 3 * C + part * C + h * hs + d];
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(static_cast<size_t>(i + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double acc = 0;
          for (int64_t d = 0; d < hs; ++d) acc += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          s[j] = acc / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& v : s) sum += (v = std::exp(v - mx));
        (*lse)[(b * H + h) * T + i] = mx + std::log(sum);
        for (int64_t d = 0; d < hs; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += s[j] / sum * at(b, j, 2, h, d);
          (*out)[(b * T + i) * C + h * hs + d] = acc;
        }
      }
    }
  }
}

class GptOpsTest : public ::testing::TestWithParam<DType> {
 protected:
  // f32 results are compared with double references far under 1e-4 (STYLE rule 7).
  double rtol() const { return GetParam() == DType::f64 ? 1e-12 : 2e-5; }
  double atol() const { return GetParam() == DType::f64 ? 1e-12 : 2e-6; }
};

TEST_P(GptOpsTest, EmbeddingForwardGathersTokenAndPositionRows) {
  const DType dt = GetParam();
  const int64_t B = 3, T = 5, V = 7, P = 8, C = 6;
  Tensor tok = random_tokens(B, T, V, 1);
  Tensor wte = random_tensor(Shape{V, C}, dt, 2), wpe = random_tensor(Shape{P, C}, dt, 3);
  Tensor y = Tensor::empty(Shape{B, T, C}, dt, cpu_device());
  ops().embedding_forward(tok, wte, wpe, y);
  std::vector<double> e = as_doubles(wte), p = as_doubles(wpe), ref;
  const int32_t* t = tok.data<int32_t>();
  for (int64_t r = 0; r < B * T; ++r) {
    for (int64_t c = 0; c < C; ++c) ref.push_back(e[t[r] * C + c] + p[(r % T) * C + c]);
  }
  EXPECT_TRUE(all_close(as_doubles(y), ref, rtol(), atol()));
}

TEST_P(GptOpsTest, EmbeddingBackwardAccumulatesRepeatedTokens) {
  const DType dt = GetParam();
  const int64_t B = 4, T = 9, V = 3, P = 12, C = 5;  // 36 tokens over 3 ids: many repeats
  Tensor tok = random_tokens(B, T, V, 4);
  Tensor dy = random_tensor(Shape{B, T, C}, dt, 5);
  Tensor dwte = random_tensor(Shape{V, C}, dt, 6), dwpe = random_tensor(Shape{P, C}, dt, 7);
  std::vector<double> ref_e = as_doubles(dwte), ref_p = as_doubles(dwpe), g = as_doubles(dy);
  const int32_t* t = tok.data<int32_t>();
  for (int64_t r = 0; r < B * T; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      ref_e[t[r] * C + c] += g[r * C + c];
      ref_p[(r % T) * C + c] += g[r * C + c];
    }
  }
  ops().embedding_backward(tok, dy, dwte, dwpe);
  EXPECT_TRUE(all_close(as_doubles(dwte), ref_e, rtol(), atol()));
  EXPECT_TRUE(all_close(as_doubles(dwpe), ref_p, rtol(), atol()));
}

TEST_P(GptOpsTest, EmbeddingRejectsTokensOutsideTheVocabulary) {
  const DType dt = GetParam();
  Tensor tok = Tensor::from_vector(std::vector<int32_t>{0, 1, 9}, Shape{1, 3});
  Tensor wte = random_tensor(Shape{4, 2}, dt, 1), wpe = random_tensor(Shape{3, 2}, dt, 2);
  Tensor y = Tensor::empty(Shape{1, 3, 2}, dt, cpu_device());
  EXPECT_THROW(ops().embedding_forward(tok, wte, wpe, y), Error);
}

TEST_P(GptOpsTest, LayerNormForwardMatchesReferenceAndSavesStatistics) {
  const DType dt = GetParam();
  const int64_t N = 37, C = 48;
  Tensor x = random_tensor(Shape{N, C}, dt, 8, -2, 3);
  Tensor w = random_tensor(Shape{C}, dt, 9), b = random_tensor(Shape{C}, dt, 10);
  Tensor y = Tensor::empty(Shape{N, C}, dt, cpu_device());
  Tensor mean = Tensor::empty(Shape{N}, dt, cpu_device()), rstd = mean.to(cpu_device());
  ops().layernorm_forward(x, w, b, y, mean, rstd, 1e-5f);
  std::vector<double> rm, rr;
  std::vector<double> ref =
      ref_layernorm(as_doubles(x), as_doubles(w), as_doubles(b), N, C, &rm, &rr);
  EXPECT_TRUE(all_close(as_doubles(y), ref, rtol(), atol()));
  EXPECT_TRUE(all_close(as_doubles(mean), rm, rtol(), atol()));
  EXPECT_TRUE(all_close(as_doubles(rstd), rr, rtol(), atol()));
}

TEST_P(GptOpsTest, LayerNormBackwardMatchesClosedForm) {
  const DType dt = GetParam();
  const int64_t N = 41, C = 24;
  Tensor x = random_tensor(Shape{N, C}, dt, 11, -1, 2);
  Tensor w = random_tensor(Shape{C}, dt, 12), b = random_tensor(Shape{C}, dt, 13);
  Tensor dy = random_tensor(Shape{N, C}, dt, 14);
  Tensor y = Tensor::empty(Shape{N, C}, dt, cpu_device());
  Tensor mean = Tensor::empty(Shape{N}, dt, cpu_device()), rstd = mean.to(cpu_device());
  ops().layernorm_forward(x, w, b, y, mean, rstd, 1e-5f);
  Tensor dx = random_tensor(Shape{N, C}, dt, 15);  // accumulated onto
  Tensor dw = random_tensor(Shape{C}, dt, 16), db = random_tensor(Shape{C}, dt, 17);
  std::vector<double> rdx = as_doubles(dx), rdw = as_doubles(dw), rdb = as_doubles(db);
  std::vector<double> xv = as_doubles(x), wv = as_doubles(w), g = as_doubles(dy), rm, rr;
  ref_layernorm(xv, wv, as_doubles(b), N, C, &rm, &rr);
  for (int64_t r = 0; r < N; ++r) {
    double mg = 0, mgx = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (xv[r * C + c] - rm[r]) * rr[r];
      mg += g[r * C + c] * wv[c] / C;
      mgx += g[r * C + c] * wv[c] * xhat / C;
      rdw[c] += g[r * C + c] * xhat;
      rdb[c] += g[r * C + c];
    }
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (xv[r * C + c] - rm[r]) * rr[r];
      rdx[r * C + c] += rr[r] * (g[r * C + c] * wv[c] - mg - xhat * mgx);
    }
  }
  ops().layernorm_backward(x, w, mean, rstd, dy, dx, dw, db, true);
  EXPECT_TRUE(all_close(as_doubles(dx), rdx, rtol(), atol()));
  EXPECT_TRUE(all_close(as_doubles(dw), rdw, rtol(), atol()));
  EXPECT_TRUE(all_close(as_doubles(db), rdb, rtol(), atol()));
}

TEST_P(GptOpsTest, AttentionForwardMatchesReference) {
  const DType dt = GetParam();
  const int64_t B = 2, T = 70, C = 12, H = 3;  // T crosses the 64-row block
  Tensor qkv = random_tensor(Shape{B, T, 3 * C}, dt, 18, -2, 2);
  Tensor out = Tensor::empty(Shape{B, T, C}, dt, cpu_device());
  Tensor lse = Tensor::empty(Shape{B, H, T}, dt, cpu_device());
  ops().attention_forward(qkv, out, lse, H);
  std::vector<double> ro, rl;
  ref_attention(as_doubles(qkv), B, T, C, H, &ro, &rl);
  EXPECT_TRUE(all_close(as_doubles(out), ro, rtol(), atol()));
  EXPECT_TRUE(all_close(as_doubles(lse), rl, rtol(), atol()));
  // Row 0 sees only itself: its output is its own value vector.
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_NEAR(as_doubles(out)[c], as_doubles(qkv)[2 * C + c], 1e-6);
  }
}

TEST_P(GptOpsTest, AttentionBackwardMatchesReference) {
  const DType dt = GetParam();
  const int64_t B = 2, T = 70, C = 12, H = 3, hs = C / H;
  Tensor qkv = random_tensor(Shape{B, T, 3 * C}, dt, 32, -2, 2);
  Tensor dout = random_tensor(Shape{B, T, C}, dt, 33);
  Tensor out = Tensor::empty(Shape{B, T, C}, dt, cpu_device());
  Tensor lse = Tensor::empty(Shape{B, H, T}, dt, cpu_device());
  Tensor dqkv = Tensor::empty(Shape{B, T, 3 * C}, dt, cpu_device());
  ops().attention_forward(qkv, out, lse, H);
  ops().attention_backward(qkv, out, lse, dout, dqkv, H);
  // Plain loops over the softmax Jacobian: dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik).
  std::vector<double> x = as_doubles(qkv), g = as_doubles(dout), ref(x.size(), 0.0);
  auto at = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) {
    return (b * T + t) * 3 * C + part * C + h * hs + d;
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> p(static_cast<size_t>(i + 1)), dp(p.size());
        double mx = -1e300, sum = 0, pdp = 0;
        for (int64_t j = 0; j <= i; ++j) {
          for (int64_t d = 0; d < hs; ++d) p[j] += x[at(b, i, 0, h, d)] * x[at(b, j, 1, h, d)];
          p[j] *= scale;
          mx = std::max(mx, p[j]);
        }
        for (double& v : p) sum += (v = std::exp(v - mx));
        for (int64_t j = 0; j <= i; ++j) {
          p[j] /= sum;
          for (int64_t d = 0; d < hs; ++d)
            dp[j] += g[(b * T + i) * C + h * hs + d] * x[at(b, j, 2, h, d)];
          pdp += p[j] * dp[j];
        }
        for (int64_t j = 0; j <= i; ++j) {
          const double ds = p[j] * (dp[j] - pdp) * scale;
          for (int64_t d = 0; d < hs; ++d) {
            ref[at(b, i, 0, h, d)] += ds * x[at(b, j, 1, h, d)];
            ref[at(b, j, 1, h, d)] += ds * x[at(b, i, 0, h, d)];
            ref[at(b, j, 2, h, d)] += p[j] * g[(b * T + i) * C + h * hs + d];
          }
        }
      }
    }
  }
  EXPECT_TRUE(all_close(as_doubles(dqkv), ref, rtol(), atol()));
}

TEST_P(GptOpsTest, ResidualAddSumsInPlace) {
  const DType dt = GetParam();
  Tensor a = random_tensor(Shape{5, 7}, dt, 19), b = random_tensor(Shape{5, 7}, dt, 20);
  std::vector<double> ref = as_doubles(a), bv = as_doubles(b);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[i];
  ops().add(a, b, a);
  EXPECT_TRUE(all_close(as_doubles(a), ref, rtol(), atol()));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GptOpsTest, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// ---- finite differences in f64 -----------------------------------------------------------

constexpr double kFdStep = 1e-5;
constexpr double kFdRtol = 1e-6, kFdAtol = 1e-9;

TEST(GptOpsGradCheck, LayerNormBackward) {
  const int64_t N = 6, C = 10;
  const DType dt = DType::f64;
  Tensor x = random_tensor(Shape{N, C}, dt, 21, -1, 2), w = random_tensor(Shape{C}, dt, 22);
  Tensor b = random_tensor(Shape{C}, dt, 23);
  std::vector<double> r = as_doubles(random_tensor(Shape{N, C}, dt, 24));
  Tensor y = Tensor::empty(Shape{N, C}, dt, cpu_device());
  Tensor mean = Tensor::empty(Shape{N}, dt, cpu_device()), rstd = mean.to(cpu_device());
  auto loss = [&] {
    ops().layernorm_forward(x, w, b, y, mean, rstd, 1e-5f);
    return dot(y, r);
  };
  std::vector<double> nx = numeric_grad(x, loss, kFdStep), nw = numeric_grad(w, loss, kFdStep);
  std::vector<double> nb = numeric_grad(b, loss, kFdStep);
  loss();
  Tensor dy = from_doubles(r, Shape{N, C}, dt), dx = Tensor::zeros(Shape{N, C}, dt, cpu_device());
  Tensor dw = Tensor::zeros(Shape{C}, dt, cpu_device()), db = dw.to(cpu_device());
  ops().layernorm_backward(x, w, mean, rstd, dy, dx, dw, db, false);
  EXPECT_TRUE(all_close(as_doubles(dx), nx, kFdRtol, kFdAtol));
  EXPECT_TRUE(all_close(as_doubles(dw), nw, kFdRtol, kFdAtol));
  EXPECT_TRUE(all_close(as_doubles(db), nb, kFdRtol, kFdAtol));
}

TEST(GptOpsGradCheck, AttentionBackward) {
  const int64_t B = 1, T = 67, C = 4, H = 2;  // crosses a row block; 804 inputs
  const DType dt = DType::f64;
  Tensor qkv = random_tensor(Shape{B, T, 3 * C}, dt, 25, -1.5, 1.5);
  std::vector<double> r = as_doubles(random_tensor(Shape{B, T, C}, dt, 26));
  Tensor out = Tensor::empty(Shape{B, T, C}, dt, cpu_device());
  Tensor lse = Tensor::empty(Shape{B, H, T}, dt, cpu_device());
  auto loss = [&] {
    ops().attention_forward(qkv, out, lse, H);
    return dot(out, r);
  };
  std::vector<double> num = numeric_grad(qkv, loss, kFdStep);
  loss();
  Tensor dout = from_doubles(r, Shape{B, T, C}, dt);
  Tensor dqkv = random_tensor(Shape{B, T, 3 * C}, dt, 27);  // overwritten, not accumulated
  ops().attention_backward(qkv, out, lse, dout, dqkv, H);
  EXPECT_TRUE(all_close(as_doubles(dqkv), num, kFdRtol, kFdAtol));
}

TEST(GptOpsGradCheck, EmbeddingBackward) {
  const int64_t B = 3, T = 4, V = 5, P = 6, C = 3;
  const DType dt = DType::f64;
  Tensor tok = random_tokens(B, T, V, 28);
  Tensor wte = random_tensor(Shape{V, C}, dt, 29), wpe = random_tensor(Shape{P, C}, dt, 30);
  std::vector<double> r = as_doubles(random_tensor(Shape{B, T, C}, dt, 31));
  Tensor y = Tensor::empty(Shape{B, T, C}, dt, cpu_device());
  auto loss = [&] {
    ops().embedding_forward(tok, wte, wpe, y);
    return dot(y, r);
  };
  std::vector<double> ne = numeric_grad(wte, loss, kFdStep), np = numeric_grad(wpe, loss, kFdStep);
  Tensor dy = from_doubles(r, Shape{B, T, C}, dt);
  Tensor dwte = Tensor::zeros(Shape{V, C}, dt, cpu_device());
  Tensor dwpe = Tensor::zeros(Shape{P, C}, dt, cpu_device());
  ops().embedding_backward(tok, dy, dwte, dwpe);
  EXPECT_TRUE(all_close(as_doubles(dwte), ne, kFdRtol, kFdAtol));
  EXPECT_TRUE(all_close(as_doubles(dwpe), np, kFdRtol, kFdAtol));
  // Positions past T receive nothing.
  for (int64_t i = T * C; i < P * C; ++i) EXPECT_EQ(as_doubles(dwpe)[i], 0.0);
}

}  // namespace
}  // namespace kiln
