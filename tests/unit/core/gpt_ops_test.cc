// The transformer ops' backward kernels on the CPU against central finite differences of their
// forward kernels, in f64: the op cases (op_cases_transformer.cc) compare each kernel with a
// plain-loop reference of its formula; these check that the formulas are the gradients.
// Also the CPU's refusal of token ids outside the vocabulary.
#include <cmath>
#include <functional>

#include "core/device.h"
#include "core/ops.h"
#include "core/rng.h"
#include "op_cases.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::all_close;
using test::as_doubles;
using test::from_doubles;
using test::random_tensor;

Ops& ops() { return cpu_device().ops(); }

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

TEST(GptOps, EmbeddingRejectsTokensOutsideTheVocabulary) {
  Tensor tok = Tensor::from_vector(std::vector<int32_t>{0, 1, 9}, Shape{1, 3});
  Tensor wte = random_tensor(Shape{4, 2}, DType::f32, 1),
         wpe = random_tensor(Shape{3, 2}, DType::f32, 2);
  Tensor y = Tensor::empty(Shape{1, 3, 2}, DType::f32, cpu_device());
  EXPECT_TRUE(
      test::contains(test::error_message([&] { ops().embedding_forward(tok, wte, wpe, y); }),
                     "embedding_forward: token 9 at position 2 is outside the vocabulary [0, 4)"));
  Tensor dwte = Tensor::zeros(Shape{4, 2}, DType::f32, cpu_device()), dwpe = dwte.to(cpu_device());
  EXPECT_TRUE(
      test::contains(test::error_message([&] { ops().embedding_backward(tok, y, dwte, dwpe); }),
                     "embedding_backward: token 9"));
}

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
