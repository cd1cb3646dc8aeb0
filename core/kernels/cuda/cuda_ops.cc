// Argument checks (the shared ones of core/ops_check.h, then the CUDA kernels' dtypes and
// limits) and dispatch for the CUDA Ops.
#include "core/kernels/cuda/cuda_ops.h"

#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/cuda_device.h"
#include "core/kernels/cuda/kernels.h"
#include "core/ops_check.h"

namespace kiln {

namespace {

void check_gpu_float(const Tensor& t, const char* what) {
  check_kernel_dtype(t, what, kCudaFloats);
}

// A launch with a bad configuration (too much shared memory, a grid too large) queues nothing
// and says so only here; without this check its outputs would silently keep old values.
void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  KILN_CHECK(e == cudaSuccess, "{}: CUDA kernel launch failed: {} ({})", what, cudaGetErrorName(e),
             cudaGetErrorString(e));
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
  const MatmulShape s = check_matmul(a, trans_a, b, trans_b, c);
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
  const LinearShape s = check_linear(x, w, b, y);
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
  check_launch("linear_forward");  // the bias kernel, when the epilogue could not take it
}

void CudaOps::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                              Tensor& dw, Tensor& db) {
  const LinearShape s = check_linear_backward(x, w, dy, dx, dw, db);
  check_gpu_float(x, "linear_backward");
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
  cuda::bias_grad_rows(dy.dtype(), db.dtype(), dy.raw(), db.raw(), s.n, s.out, stream_);
  check_launch("linear_backward");
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
  const ConvShape s = check_conv2d(x, w, b, y, p);
  check_gpu_float(x, "conv2d_forward");
  conv_.forward(x, w, y, s, p, stream_);
  cuda::add_bias_channels(y.dtype(), y.raw(), b.raw(), s.n, s.o, s.ho * s.wo, stream_);
  check_launch("conv2d_forward");
}

void CudaOps::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                              Tensor& dw, Tensor& db, const Conv2dParams& p) {
  const ConvShape s = check_conv2d_backward(x, w, dy, dx, dw, db, p);
  check_gpu_float(x, "conv2d_backward");
  conv_.backward(x, w, dy, dx, dw, s, p, stream_);
  cuda::bias_grad_channels(dy.dtype(), db.dtype(), dy.raw(), db.raw(), s.n, s.o, s.ho * s.wo,
                           stream_);
  check_launch("conv2d_backward");
}

void CudaOps::maxpool2d_forward(const Tensor& x, Tensor& y, Tensor& argmax, int64_t kernel,
                                int64_t stride) {
  check_maxpool2d(x, y, argmax, kernel, stride);
  check_gpu_float(x, "maxpool2d_forward");
  cuda::maxpool2d_forward(x.dtype(), x.raw(), y.raw(), argmax.data<int32_t>(), x.dim(0) * x.dim(1),
                          x.dim(2), x.dim(3), y.dim(2), y.dim(3), kernel, stride, stream_);
  check_launch("maxpool2d_forward");
}

void CudaOps::maxpool2d_backward(const Tensor& dy, const Tensor& argmax, Tensor& dx) {
  check_maxpool2d_backward(dy, argmax, dx);
  check_gpu_float(dy, "maxpool2d_backward");
  cuda::maxpool2d_backward(dy.dtype(), dy.raw(), argmax.data<int32_t>(), dx.raw(),
                           dx.dim(0) * dx.dim(1), dx.dim(2) * dx.dim(3), dy.dim(2) * dy.dim(3),
                           stream_);
  check_launch("maxpool2d_backward");
}

void CudaOps::relu_forward(const Tensor& x, Tensor& y) {
  check_unary(x, y, "relu_forward");
  check_gpu_float(x, "relu_forward");
  cuda::relu_forward(x.dtype(), x.raw(), y.raw(), x.numel(), stream_);
  check_launch("relu_forward");
}

void CudaOps::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_unary_backward(y, dy, dx, "relu_backward");
  check_gpu_float(y, "relu_backward");
  cuda::relu_backward(y.dtype(), y.raw(), dy.raw(), dx.raw(), y.numel(), stream_);
  check_launch("relu_backward");
}

void CudaOps::gelu_forward(const Tensor& x, Tensor& y) {
  check_unary(x, y, "gelu_forward");
  check_gpu_float(x, "gelu_forward");
  cuda::gelu_forward(x.dtype(), x.raw(), y.raw(), x.numel(), stream_);
  check_launch("gelu_forward");
}

void CudaOps::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_unary_backward(x, dy, dx, "gelu_backward");
  check_gpu_float(x, "gelu_backward");
  cuda::gelu_backward(x.dtype(), x.raw(), dy.raw(), dx.raw(), x.numel(), stream_);
  check_launch("gelu_backward");
}

void CudaOps::dropout_forward(const Tensor& x, Tensor& y, Tensor& mask, float p,
                              const DropoutKey& key) {
  const int64_t per_sample = check_dropout(x, y, mask, p);
  check_gpu_float(x, "dropout_forward");
  cuda::dropout_forward(x.dtype(), x.raw(), y.raw(), mask.data<uint8_t>(), x.numel(), per_sample, p,
                        key, stream_);
  check_launch("dropout_forward");
}

void CudaOps::dropout_backward(const Tensor& dy, const Tensor& mask, Tensor& dx, float p) {
  check_dropout_backward(dy, mask, dx, p);
  check_gpu_float(dy, "dropout_backward");
  cuda::dropout_backward(dy.dtype(), dy.raw(), mask.data<uint8_t>(), dx.raw(), dy.numel(), p,
                         stream_);
  check_launch("dropout_backward");
}

void CudaOps::softmax_xent(const Tensor& logits, const Tensor& labels, Tensor* dlogits,
                           float grad_scale, Tensor& stats) {
  check_softmax_xent(logits, labels, dlogits, stats);
  check_gpu_float(logits, "softmax_xent");
  // The kernel adds each row's loss and hit into stats.
  KILN_CUDA_CHECK(cudaMemsetAsync(stats.raw(), 0, 2 * sizeof(double), stream_));
  cuda::softmax_xent(logits.dtype(), logits.raw(), labels.data<int32_t>(),
                     dlogits ? dlogits->raw() : nullptr, logits.dim(0), logits.dim(1), grad_scale,
                     stats.data<double>(), stream_);
  check_launch("softmax_xent");
}

void CudaOps::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                         const AdamWArgs& args) {
  check_optimizer_f32(param, grad, m, &v, "adamw_step");
  cuda::adamw_step(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                   param.numel(), args, stream_);
  check_launch("adamw_step");
}

void CudaOps::sgd_step(Tensor& param, const Tensor& grad, Tensor& buf, const SgdArgs& args) {
  check_optimizer_f32(param, grad, buf, nullptr, "sgd_step");
  cuda::sgd_step(param.data<float>(), grad.data<float>(), buf.data<float>(), param.numel(), args,
                 stream_);
  check_launch("sgd_step");
}

double CudaOps::sum_squares(const Tensor& x) {
  check_gpu_float(x, "sum_squares");
  KILN_CUDA_CHECK(cudaMemsetAsync(scalars_, 0, sizeof(double), stream_));
  cuda::sum_squares(x.dtype(), x.raw(), x.numel(), scalars_, stream_);
  check_launch("sum_squares");
  KILN_CUDA_CHECK(
      cudaMemcpyAsync(host_scalars_, scalars_, sizeof(double), cudaMemcpyDeviceToHost, stream_));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return host_scalars_[0];
}

void CudaOps::scale(Tensor& x, double alpha) {
  check_gpu_float(x, "scale");
  cuda::scale(x.dtype(), x.raw(), static_cast<float>(alpha), x.numel(), stream_);
  check_launch("scale");
}

bool CudaOps::all_finite(const Tensor& x) {
  check_gpu_float(x, "all_finite");
  KILN_CUDA_CHECK(cudaMemsetAsync(flag_, 0, sizeof(int32_t), stream_));
  cuda::find_nonfinite(x.dtype(), x.raw(), x.numel(), flag_, stream_);
  check_launch("all_finite");
  int32_t host = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&host, flag_, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return host == 0;
}

void CudaOps::cast(const Tensor& src, Tensor& dst, bool accumulate) {
  check_cast(src, dst);
  check_gpu_float(src, "cast");
  check_gpu_float(dst, "cast");
  cuda::convert(src.dtype(), src.raw(), dst.dtype(), dst.raw(), src.numel(), accumulate, stream_);
  check_launch("cast");
}

void CudaOps::embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                                Tensor& y) {
  const EmbeddingShape s = check_embedding(tokens, wte, wpe, y);
  check_gpu_float(wte, "embedding_forward");
  cuda::embedding_forward(wte.dtype(), tokens.data<int32_t>(), wte.raw(), wpe.raw(), y.raw(), s.B,
                          s.T, s.C, wte.dim(0), stream_);
  check_launch("embedding_forward");
}

void CudaOps::embedding_backward(const Tensor& tokens, const Tensor& dy, Tensor& dwte,
                                 Tensor& dwpe) {
  const EmbeddingShape s = check_embedding_backward(tokens, dy, dwte, dwpe);
  check_gpu_float(dy, "embedding_backward");
  cuda::embedding_backward(dy.dtype(), dwte.dtype(), tokens.data<int32_t>(), dy.raw(), dwte.raw(),
                           dwpe.raw(), s.B, s.T, s.C, dwte.dim(0), stream_);
  check_launch("embedding_backward");
}

void CudaOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                                Tensor& mean, Tensor& rstd, float eps) {
  const RowsShape s = check_layernorm(x, w, b, y, mean, rstd);
  check_gpu_float(x, "layernorm_forward");
  cuda::layernorm_forward(x.dtype(), x.raw(), w.raw(), b.raw(), y.raw(), mean.raw(), rstd.raw(),
                          s.N, s.C, eps, stream_);
  check_launch("layernorm_forward");
}

void CudaOps::layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                 const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                                 Tensor& db, bool accumulate_dx) {
  const RowsShape s = check_layernorm_backward(x, w, mean, rstd, dy, dx, dw, db);
  check_gpu_float(x, "layernorm_backward");
  cuda::layernorm_backward(x.dtype(), dw.dtype(), x.raw(), w.raw(), mean.raw(), rstd.raw(),
                           dy.raw(), dx.raw(), dw.raw(), db.raw(), s.N, s.C, accumulate_dx,
                           stream_);
  check_launch("layernorm_backward");
}

namespace {
// Limits of the CUDA attention kernels: the scores of a query row live in shared memory, and
// (batch, head) pairs are the grid's second dimension.
void check_attention_limits(const AttentionShape& s, const char* what) {
  KILN_CHECK(s.T <= cuda::kAttentionMaxT,
             "{}: T = {} exceeds the {} positions the CUDA attention kernels keep in shared "
             "memory; shorten model.block_size",
             what, s.T, cuda::kAttentionMaxT);
  KILN_CHECK(s.B * s.H <= 65535,
             "{}: batch {} x {} heads exceeds the CUDA grid's 65535; lower train.micro_batch", what,
             s.B, s.H);
}
}  // namespace

void CudaOps::attention_forward(const Tensor& qkv, Tensor& out, Tensor& lse, int64_t n_head) {
  const AttentionShape s = check_attention(qkv, out, lse, n_head);
  check_gpu_float(qkv, "attention_forward");
  check_attention_limits(s, "attention_forward");
  cuda::attention_forward(qkv.dtype(), qkv.raw(), out.raw(), lse.raw(), s.B, s.T, s.C, s.H,
                          stream_);
  check_launch("attention_forward");
}

void CudaOps::attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                 const Tensor& dout, Tensor& dqkv, int64_t n_head) {
  const AttentionShape s = check_attention_backward(qkv, out, lse, dout, dqkv, n_head);
  check_gpu_float(qkv, "attention_backward");
  check_attention_limits(s, "attention_backward");
  const size_t need = static_cast<size_t>(s.B * s.T * 2 * s.C);
  if (need > kv_acc_elems_) {
    // cudaFree waits for the kernels still reading the old buffer.
    if (kv_acc_) KILN_CUDA_CHECK(cudaFree(kv_acc_));
    kv_acc_ = nullptr;
    kv_acc_elems_ = 0;
    KILN_CUDA_CHECK(cudaMalloc(&kv_acc_, need * sizeof(float)));
    kv_acc_elems_ = need;
  }
  // The key and value gradients are summed into kv_acc with atomics.
  KILN_CUDA_CHECK(cudaMemsetAsync(kv_acc_, 0, need * sizeof(float), stream_));
  cuda::attention_backward(qkv.dtype(), qkv.raw(), out.raw(), lse.raw(), dout.raw(), dqkv.raw(),
                           kv_acc_, s.B, s.T, s.C, s.H, stream_);
  check_launch("attention_backward");
}

void CudaOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  check_add(a, b, y);
  check_gpu_float(a, "add");
  cuda::add(a.dtype(), a.raw(), b.raw(), y.raw(), a.numel(), stream_);
  check_launch("add");
}

}  // namespace kiln
