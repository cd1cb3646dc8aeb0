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

}  // namespace kiln
