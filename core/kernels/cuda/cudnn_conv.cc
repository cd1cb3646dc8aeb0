// cuDNN convolutions: descriptors and algorithm choices cached per shape.
#include "core/kernels/cuda/cudnn_conv.h"

#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDNN_DATA_FLOAT;
    case DType::bf16:
      return CUDNN_DATA_BFLOAT16;
    case DType::f16:
      return CUDNN_DATA_HALF;
    default:
      KILN_FAIL("cuDNN convolution: dtype {} is not supported", dtype_name(t));
  }
}

constexpr int kMaxAlgos = 16;
constexpr size_t kWorkspaceLimit = size_t{512} << 20;

}  // namespace

struct ConvRunner::Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

ConvRunner::ConvRunner() { KILN_CUDNN_CHECK(cudnnCreate(&handle_)); }

ConvRunner::~ConvRunner() {
  if (workspace_) cudaFree(workspace_);
  if (dw_tmp_) cudaFree(dw_tmp_);
  if (handle_) cudnnDestroy(handle_);
}

void* ConvRunner::workspace(size_t bytes) {
  if (bytes > workspace_bytes_) {
    if (workspace_) KILN_CUDA_CHECK(cudaFree(workspace_));
    workspace_ = nullptr;
    KILN_CUDA_CHECK(cudaMalloc(&workspace_, bytes));
    workspace_bytes_ = bytes;
  }
  return workspace_;
}

ConvRunner::Plan& ConvRunner::plan(DType dtype, const ConvShape& s, const Conv2dParams& p) {
  Key key{s.n, s.c, s.h, s.w, s.o, s.kh, s.kw, p.stride, p.pad, static_cast<int>(dtype)};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  const cudnnDataType_t t = cudnn_type(dtype);
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->x));
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->y));
  KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->w));
  KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan->conv));
  KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NCHW, t, s.n, s.c, s.h, s.w));
  KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NCHW, t, s.n, s.o, s.ho, s.wo));
  KILN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan->w, t, CUDNN_TENSOR_NCHW, s.o, s.c, s.kh, s.kw));
  KILN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan->conv, p.pad, p.pad, p.stride, p.stride, 1,
                                                   1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION));

  // The heuristics' first choice that needs no more than kWorkspaceLimit.
  int n = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[kMaxAlgos];
  KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, plan->x, plan->w, plan->conv,
                                                          plan->y, kMaxAlgos, &n, fwd));
  bool ok = false;
  for (int i = 0; i < n && !ok; ++i) {
    if (fwd[i].status == CUDNN_STATUS_SUCCESS && fwd[i].memory <= kWorkspaceLimit) {
      plan->fwd = fwd[i].algo;
      plan->fwd_ws = fwd[i].memory;
      ok = true;
    }
  }
  KILN_CHECK(ok, "cuDNN has no forward algorithm for x ({}, {}, {}, {}) w ({}, {}, {}, {})", s.n,
             s.c, s.h, s.w, s.o, s.c, s.kh, s.kw);
  cudnnConvolutionBwdDataAlgoPerf_t bd[kMaxAlgos];
  KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      handle_, plan->w, plan->y, plan->conv, plan->x, kMaxAlgos, &n, bd));
  ok = false;
  for (int i = 0; i < n && !ok; ++i) {
    if (bd[i].status == CUDNN_STATUS_SUCCESS && bd[i].memory <= kWorkspaceLimit) {
      plan->bwd_data = bd[i].algo;
      plan->bwd_data_ws = bd[i].memory;
      ok = true;
    }
  }
  KILN_CHECK(ok, "cuDNN has no backward-data algorithm for x ({}, {}, {}, {})", s.n, s.c, s.h, s.w);
  cudnnConvolutionBwdFilterAlgoPerf_t bf[kMaxAlgos];
  KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      handle_, plan->x, plan->y, plan->conv, plan->w, kMaxAlgos, &n, bf));
  ok = false;
  for (int i = 0; i < n && !ok; ++i) {
    if (bf[i].status == CUDNN_STATUS_SUCCESS && bf[i].memory <= kWorkspaceLimit) {
      plan->bwd_filter = bf[i].algo;
      plan->bwd_filter_ws = bf[i].memory;
      ok = true;
    }
  }
  KILN_CHECK(ok, "cuDNN has no backward-filter algorithm for x ({}, {}, {}, {})", s.n, s.c, s.h,
             s.w);
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void ConvRunner::forward(const Tensor& x, const Tensor& w, Tensor& y, const ConvShape& s,
                         const Conv2dParams& p, cudaStream_t stream) {
  Plan& pl = plan(x.dtype(), s, p);
  KILN_CUDNN_CHECK(cudnnSetStream(handle_, stream));
  const float one = 1.f, zero = 0.f;
  void* ws = workspace(pl.fwd_ws);
  KILN_CUDNN_CHECK(cudnnConvolutionForward(handle_, &one, pl.x, x.raw(), pl.w, w.raw(), pl.conv,
                                           pl.fwd, ws, pl.fwd_ws, &zero, pl.y, y.raw()));
}

void ConvRunner::backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                          Tensor& dw, const ConvShape& s, const Conv2dParams& p,
                          cudaStream_t stream) {
  Plan& pl = plan(x.dtype(), s, p);
  KILN_CUDNN_CHECK(cudnnSetStream(handle_, stream));
  const float one = 1.f, zero = 0.f;
  void* ws = workspace(std::max(pl.bwd_filter_ws, pl.bwd_data_ws));
  if (dw.dtype() == x.dtype()) {
    KILN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle_, &one, pl.x, x.raw(), pl.y, dy.raw(),
                                                    pl.conv, pl.bwd_filter, ws, pl.bwd_filter_ws,
                                                    &one, pl.w, dw.raw()));
  } else {
    // 16-bit operands: the filter gradient comes out in their type, then adds into f32.
    const size_t bytes = w.nbytes();
    if (bytes > dw_tmp_bytes_) {
      if (dw_tmp_) KILN_CUDA_CHECK(cudaFree(dw_tmp_));
      dw_tmp_ = nullptr;
      KILN_CUDA_CHECK(cudaMalloc(&dw_tmp_, bytes));
      dw_tmp_bytes_ = bytes;
    }
    KILN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle_, &one, pl.x, x.raw(), pl.y, dy.raw(),
                                                    pl.conv, pl.bwd_filter, ws, pl.bwd_filter_ws,
                                                    &zero, pl.w, dw_tmp_));
    convert(x.dtype(), dw_tmp_, dw.dtype(), dw.raw(), w.numel(), true, stream);
  }
  if (dx) {
    KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(handle_, &one, pl.w, w.raw(), pl.y, dy.raw(),
                                                  pl.conv, pl.bwd_data, ws, pl.bwd_data_ws, &zero,
                                                  pl.x, dx->raw()));
  }
}

}  // namespace kiln::cuda
