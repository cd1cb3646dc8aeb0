// Shape checks and dispatch for the CUDA Ops.
#include "core/kernels/cuda/cuda_ops.h"

#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/cuda_device.h"
#include "core/kernels/cuda/kernels.h"
#include "core/ops_check.h"

namespace kiln {

namespace {

void check_gpu_float(const Tensor& t, const char* what) {
  KILN_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16,
             "{}: the CUDA kernels take f32, bf16 or f16, got {}", what, dtype_name(t.dtype()));
}

}  // namespace

CudaOps::CudaOps(CudaDevice& device, cudaStream_t stream) : device_(device), stream_(stream) {
  KILN_CUDA_CHECK(cudaMalloc(&scalars_, 2 * sizeof(double)));
  KILN_CUDA_CHECK(cudaMallocHost(&host_scalars_, 2 * sizeof(double)));
  KILN_CUDA_CHECK(cudaMalloc(&flag_, sizeof(int32_t)));
}

CudaOps::~CudaOps() {
  if (kv_acc_) cudaFree(kv_acc_);
  cudaFree(scalars_);
  cudaFreeHost(host_scalars_);
  cudaFree(flag_);
}

void CudaOps::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                     float alpha, float beta) {
  MatmulShape s = check_matmul(a, trans_a, b, trans_b, c);
  check_gpu_float(a, "matmul");
  cuda::Gemm g;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.m = s.m;
  g.n = s.n;
  g.k = s.k;
  g.ab_dtype = a.dtype();
  g.c_dtype = c.dtype();
  g.a = a.raw();
  g.b = b.raw();
  g.c = c.raw();
  g.lda = a.dim(1);
  g.ldb = b.dim(1);
  g.ldc = s.n;
  g.alpha = alpha;
  g.beta = beta;
  gemm_.run(g, stream_);
}

void CudaOps::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  LinearShape s = check_linear(x, w, b, y);
  check_gpu_float(x, "linear_forward");
  cuda::Gemm g;
  g.trans_b = true;  // y = x w^T
  g.m = s.n;
  g.n = s.out;
  g.k = s.in;
  g.ab_dtype = x.dtype();
  g.c_dtype = y.dtype();
  g.a = x.raw();
  g.b = w.raw();
  g.c = y.raw();
  g.lda = s.in;
  g.ldb = s.in;
  g.ldc = s.out;
  g.bias = b.raw();
  gemm_.run(g, stream_);
}

void CudaOps::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                              Tensor& dw, Tensor& db) {
  LinearShape s = check_linear_backward(x, w, dy, dx, dw, db);
  check_gpu_float(x, "linear_backward");
  KILN_CHECK(db.dtype() == DType::f32, "linear_backward: bias gradients accumulate in f32");
  cuda::Gemm g;  // dw (out, in) += dy^T (out, N) x (N, in)
  g.trans_a = true;
  g.m = s.out;
  g.n = s.in;
  g.k = s.n;
  g.ab_dtype = x.dtype();
  g.c_dtype = dw.dtype();
  g.a = dy.raw();
  g.b = x.raw();
  g.c = dw.raw();
  g.lda = s.out;
  g.ldb = s.in;
  g.ldc = s.in;
  g.beta = 1.f;
  gemm_.run(g, stream_);
  cuda::bias_grad_rows(dy.dtype(), dy.raw(), db.data<float>(), s.n, s.out, stream_);
  if (dx) {
    cuda::Gemm h;  // dx (N, in) = dy (N, out) w (out, in)
    h.m = s.n;
    h.n = s.in;
    h.k = s.out;
    h.ab_dtype = x.dtype();
    h.c_dtype = dx->dtype();
    h.a = dy.raw();
    h.b = w.raw();
    h.c = dx->raw();
    h.lda = s.out;
    h.ldb = s.in;
    h.ldc = s.in;
    gemm_.run(h, stream_);
  }
}

void CudaOps::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                             const Conv2dParams& p) {
  ConvShape s = check_conv2d(x, w, b, y, p);
  check_gpu_float(x, "conv2d_forward");
  conv_.forward(x, w, y, p, stream_);
  cuda::add_bias_channels(y.dtype(), y.raw(), b.raw(), s.n, s.o, s.ho * s.wo, stream_);
}

void CudaOps::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                              Tensor& dw, Tensor& db, const Conv2dParams& p) {
  ConvShape s = check_conv2d_backward(x, w, dy, dx, dw, db, p);
  check_gpu_float(x, "conv2d_backward");
  KILN_CHECK(db.dtype() == DType::f32, "conv2d_backward: bias gradients accumulate in f32");
  conv_.backward(x, w, dy, dx, dw, p, stream_);
  cuda::bias_grad_channels(dy.dtype(), dy.raw(), db.data<float>(), s.n, s.o, s.ho * s.wo,
                           stream_);
}

void CudaOps::maxpool2d_forward(const Tensor& x, Tensor& y, Tensor& argmax, int64_t kernel,
                                int64_t stride) {
  check_maxpool2d(x, y, argmax, kernel, stride);
  check_gpu_float(x, "maxpool2d_forward");
  cuda::maxpool2d_forward(x.dtype(), x.raw(), y.raw(), argmax.data<int32_t>(),
                          x.dim(0) * x.dim(1), x.dim(2), x.dim(3), y.dim(2), y.dim(3), kernel,
                          stride, stream_);
}

void CudaOps::maxpool2d_backward(const Tensor& dy, const Tensor& argmax, Tensor& dx) {
  check_maxpool2d_backward(dy, argmax, dx);
  check_gpu_float(dy, "maxpool2d_backward");
  // Windows overlap when the output would not tile the input exactly.
  const bool overlapping = dy.dim(2) * 2 > dx.dim(2) + 1 || dy.dim(3) * 2 > dx.dim(3) + 1;
  cuda::maxpool2d_backward(dy.dtype(), dy.raw(), argmax.data<int32_t>(), dx.raw(),
                           dx.dim(0) * dx.dim(1), dx.dim(2) * dx.dim(3), dy.dim(2) * dy.dim(3),
                           overlapping, stream_);
}

void CudaOps::relu_forward(const Tensor& x, Tensor& y) {
  check_same(x, y, "relu_forward");
  check_gpu_float(x, "relu_forward");
  cuda::relu_forward(x.dtype(), x.raw(), y.raw(), x.numel(), stream_);
}

void CudaOps::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_same(y, dy, "relu_backward");
  check_same(y, dx, "relu_backward");
  check_gpu_float(y, "relu_backward");
  cuda::relu_backward(y.dtype(), y.raw(), dy.raw(), dx.raw(), y.numel(), stream_);
}

void CudaOps::gelu_forward(const Tensor& x, Tensor& y) {
  check_same(x, y, "gelu_forward");
  check_gpu_float(x, "gelu_forward");
  cuda::gelu_forward(x.dtype(), x.raw(), y.raw(), x.numel(), stream_);
}

void CudaOps::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_same(x, dy, "gelu_backward");
  check_same(x, dx, "gelu_backward");
  check_gpu_float(x, "gelu_backward");
  cuda::gelu_backward(x.dtype(), x.raw(), dy.raw(), dx.raw(), x.numel(), stream_);
}

void CudaOps::dropout_forward(const Tensor& x, Tensor& y, Tensor& mask, float p,
                              const DropoutKey& key) {
  const int64_t per_sample = check_dropout(x, y, mask, p);
  check_gpu_float(x, "dropout_forward");
  cuda::dropout_forward(x.dtype(), x.raw(), y.raw(), mask.data<uint8_t>(), x.numel(), per_sample,
                        p, key, stream_);
}

void CudaOps::dropout_backward(const Tensor& dy, const Tensor& mask, Tensor& dx, float p) {
  check_same(dy, dx, "dropout_backward");
  check_gpu_float(dy, "dropout_backward");
  cuda::dropout_backward(dy.dtype(), dy.raw(), mask.data<uint8_t>(), dx.raw(), dy.numel(), p,
                         stream_);
}

void CudaOps::softmax_xent(const Tensor& logits, const Tensor& labels, Tensor* dlogits,
                           float grad_scale, Tensor& stats) {
  check_softmax_xent(logits, labels, dlogits, stats);
  check_gpu_float(logits, "softmax_xent");
  cuda::softmax_xent(logits.dtype(), logits.raw(), labels.data<int32_t>(),
                     dlogits ? dlogits->raw() : nullptr, logits.dim(0), logits.dim(1),
                     grad_scale, stats.data<double>(), stream_);
}

void CudaOps::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                         const AdamWArgs& args) {
  check_optimizer_f32(param, grad, m, &v, "adamw_step");
  cuda::adamw_step(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                   param.numel(), args, stream_);
}

void CudaOps::sgd_step(Tensor& param, const Tensor& grad, Tensor& buf, const SgdArgs& args) {
  check_optimizer_f32(param, grad, buf, nullptr, "sgd_step");
  cuda::sgd_step(param.data<float>(), grad.data<float>(), buf.data<float>(), param.numel(), args,
                 stream_);
}

double CudaOps::sum_squares(const Tensor& x) {
  check_gpu_float(x, "sum_squares");
  KILN_CUDA_CHECK(cudaMemsetAsync(scalars_, 0, sizeof(double), stream_));
  cuda::sum_squares(x.dtype(), x.raw(), x.numel(), scalars_, stream_);
  KILN_CUDA_CHECK(cudaMemcpyAsync(host_scalars_, scalars_, sizeof(double), cudaMemcpyDeviceToHost,
                                  stream_));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return host_scalars_[0];
}

void CudaOps::scale(Tensor& x, double alpha) {
  check_gpu_float(x, "scale");
  cuda::scale(x.dtype(), x.raw(), static_cast<float>(alpha), x.numel(), stream_);
}

bool CudaOps::all_finite(const Tensor& x) {
  check_gpu_float(x, "all_finite");
  KILN_CUDA_CHECK(cudaMemsetAsync(flag_, 0, sizeof(int32_t), stream_));
  cuda::find_nonfinite(x.dtype(), x.raw(), x.numel(), flag_, stream_);
  int32_t host = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&host, flag_, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return host == 0;
}

void CudaOps::cast(const Tensor& src, Tensor& dst, bool accumulate) {
  check_gpu_float(src, "cast");
  check_gpu_float(dst, "cast");
  KILN_CHECK(src.numel() == dst.numel(), "cast: {} elements into {}", src.numel(), dst.numel());
  cuda::convert(src.dtype(), src.raw(), dst.dtype(), dst.raw(), src.numel(), accumulate, stream_);
}

void CudaOps::embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                                Tensor& y) {
  KILN_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32 && wte.ndim() == 2 &&
                 wpe.ndim() == 2 && wte.dim(1) == wpe.dim(1) && tokens.dim(1) <= wpe.dim(0) &&
                 y.numel() == tokens.numel() * wte.dim(1) && y.dtype() == wte.dtype() &&
                 wpe.dtype() == wte.dtype(),
             "embedding_forward: tokens {}, wte {}, wpe {}, y {}", tokens.shape().str(),
             wte.shape().str(), wpe.shape().str(), y.shape().str());
  check_gpu_float(wte, "embedding_forward");
  cuda::embedding_forward(wte.dtype(), tokens.data<int32_t>(), wte.raw(), wpe.raw(), y.raw(),
                          tokens.dim(0), tokens.dim(1), wte.dim(1), stream_);
}

void CudaOps::embedding_backward(const Tensor& tokens, const Tensor& dy, Tensor& dwte,
                                 Tensor& dwpe) {
  KILN_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32 && dwte.ndim() == 2 &&
                 dwpe.ndim() == 2 && dwte.dim(1) == dwpe.dim(1) &&
                 tokens.dim(1) <= dwpe.dim(0) && dy.numel() == tokens.numel() * dwte.dim(1) &&
                 dwte.dtype() == dwpe.dtype(),
             "embedding_backward: tokens {}, dy {}, dwte {}, dwpe {}", tokens.shape().str(),
             dy.shape().str(), dwte.shape().str(), dwpe.shape().str());
  check_gpu_float(dy, "embedding_backward");
  check_gpu_float(dwte, "embedding_backward");
  cuda::embedding_backward(dy.dtype(), dwte.dtype(), tokens.data<int32_t>(), dy.raw(), dwte.raw(),
                           dwpe.raw(), tokens.dim(0), tokens.dim(1), dwte.dim(1), stream_);
}

void CudaOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                                Tensor& mean, Tensor& rstd, float eps) {
  const int64_t C = x.ndim() ? x.dim(-1) : 0, N = C ? x.numel() / C : 0;
  KILN_CHECK(w.numel() == C && b.numel() == C && y.numel() == x.numel() && mean.numel() == N &&
                 rstd.numel() == N && w.dtype() == x.dtype() && y.dtype() == x.dtype() &&
                 mean.dtype() == x.dtype() && rstd.dtype() == x.dtype(),
             "layernorm_forward: x {}, w {}, y {}, mean {}", x.shape().str(), w.shape().str(),
             y.shape().str(), mean.shape().str());
  check_gpu_float(x, "layernorm_forward");
  cuda::layernorm_forward(x.dtype(), x.raw(), w.raw(), b.raw(), y.raw(), mean.raw(), rstd.raw(), N,
                          C, eps, stream_);
}

void CudaOps::layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                 const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                                 Tensor& db, bool accumulate_dx) {
  const int64_t C = x.ndim() ? x.dim(-1) : 0, N = C ? x.numel() / C : 0;
  KILN_CHECK(w.numel() == C && dw.numel() == C && db.numel() == C && dy.numel() == x.numel() &&
                 dx.numel() == x.numel() && mean.numel() == N && rstd.numel() == N &&
                 dx.dtype() == x.dtype() && dy.dtype() == x.dtype() && dw.dtype() == db.dtype(),
             "layernorm_backward: x {}, dy {}, dx {}, dw {}", x.shape().str(), dy.shape().str(),
             dx.shape().str(), dw.shape().str());
  check_gpu_float(x, "layernorm_backward");
  check_gpu_float(dw, "layernorm_backward");
  cuda::layernorm_backward(x.dtype(), dw.dtype(), x.raw(), w.raw(), mean.raw(), rstd.raw(),
                           dy.raw(), dx.raw(), dw.raw(), db.raw(), N, C, accumulate_dx, stream_);
}

namespace {
struct AttnDims {
  int64_t B, T, C;
};
AttnDims attention_dims(const Tensor& qkv, const Tensor& out, const Tensor& lse, int64_t n_head,
                        const char* what) {
  KILN_CHECK(qkv.ndim() == 3 && qkv.dim(2) % 3 == 0 && n_head >= 1 &&
                 (qkv.dim(2) / 3) % n_head == 0,
             "{}: qkv {} must be (B, T, 3C) with C divisible by {} heads", what,
             qkv.shape().str(), n_head);
  AttnDims d{qkv.dim(0), qkv.dim(1), qkv.dim(2) / 3};
  KILN_CHECK(out.numel() == d.B * d.T * d.C && lse.numel() == d.B * n_head * d.T &&
                 out.dtype() == qkv.dtype() && lse.dtype() == qkv.dtype(),
             "{}: out {} or lse {} do not match qkv {}", what, out.shape().str(),
             lse.shape().str(), qkv.shape().str());
  KILN_CHECK(d.T <= 8192, "{}: T = {} exceeds the 8192 positions the CUDA attention kernel keeps "
             "in shared memory", what, d.T);
  return d;
}
}  // namespace

void CudaOps::attention_forward(const Tensor& qkv, Tensor& out, Tensor& lse, int64_t n_head) {
  AttnDims d = attention_dims(qkv, out, lse, n_head, "attention_forward");
  check_gpu_float(qkv, "attention_forward");
  cuda::attention_forward(qkv.dtype(), qkv.raw(), out.raw(), lse.raw(), d.B, d.T, d.C, n_head,
                          stream_);
}

void CudaOps::attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                 const Tensor& dout, Tensor& dqkv, int64_t n_head) {
  AttnDims d = attention_dims(qkv, out, lse, n_head, "attention_backward");
  check_same(out, dout, "attention_backward");
  check_same(qkv, dqkv, "attention_backward");
  check_gpu_float(qkv, "attention_backward");
  const size_t need = static_cast<size_t>(d.B * d.T * 2 * d.C);
  if (need > kv_acc_elems_) {
    if (kv_acc_) KILN_CUDA_CHECK(cudaFree(kv_acc_));
    kv_acc_ = nullptr;
    KILN_CUDA_CHECK(cudaMalloc(&kv_acc_, need * sizeof(float)));
    kv_acc_elems_ = need;
  }
  cuda::attention_backward(qkv.dtype(), qkv.raw(), out.raw(), lse.raw(), dout.raw(), dqkv.raw(),
                           kv_acc_, d.B, d.T, d.C, n_head, stream_);
}

void CudaOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  check_same(a, b, "add");
  check_same(a, y, "add");
  check_gpu_float(a, "add");
  cuda::add(a.dtype(), a.raw(), b.raw(), y.raw(), a.numel(), stream_);
}

}  // namespace kiln
