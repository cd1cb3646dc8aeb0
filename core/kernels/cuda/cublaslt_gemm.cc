// cuBLASLt GEMMs for row-major tensors: computed as the column-major product C^T = op(B)^T op(A)^T,
// so no data is transposed.
#include "core/kernels/cuda/cublaslt_gemm.h"

#include <memory>

#include "core/kernels/cuda/cuda_check.h"

namespace kiln::cuda {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: KILN_FAIL("cuBLASLt GEMM: dtype {} is not supported (f32, bf16, f16)", dtype_name(t));
  }
}

struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
  void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using Layout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, DescDeleter>;
using Preference = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, DescDeleter>;

Layout layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, rows, cols, ld));
  return Layout(l);
}

}  // namespace

GemmRunner::GemmRunner() {
  KILN_CUBLAS_CHECK(cublasLtCreate(&handle_));
  KILN_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

GemmRunner::~GemmRunner() {
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

void GemmRunner::run(const Gemm& g, cudaStream_t stream) {
  if (g.m == 0 || g.n == 0) return;
  const cudaDataType_t ab = cuda_type(g.ab_dtype), ct = cuda_type(g.c_dtype);
  // f32 operands run on TF32 tensor cores (within the tf32 tolerance of the op tests).
  const cublasComputeType_t compute =
      g.ab_dtype == DType::f32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasLtMatmulDesc_t raw = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&raw, compute, CUDA_R_32F));
  MatmulDesc desc(raw);
  // Column-major view: D (n x m) = X (n x k) * Y (k x m), X = op(b)^T, Y = op(a)^T.
  cublasOperation_t tx = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t ty = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, &tx,
                                                   sizeof(tx)));
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, &ty,
                                                   sizeof(ty)));
  if (g.bias) {
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                     &epi, sizeof(epi)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct, sizeof(ct)));
  }
  Layout lx = g.trans_b ? layout(ab, g.k, g.n, g.ldb) : layout(ab, g.n, g.k, g.ldb);
  Layout ly = g.trans_a ? layout(ab, g.m, g.k, g.lda) : layout(ab, g.k, g.m, g.lda);
  Layout ld = layout(ct, g.n, g.m, g.ldc);

  Key key{g.trans_a, g.trans_b, g.m, g.n, g.k, static_cast<int>(g.ab_dtype),
          static_cast<int>(g.c_dtype), g.lda, g.ldb, g.ldc, g.bias != nullptr, g.beta != 0.f};
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    cublasLtMatmulPreference_t praw = nullptr;
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&praw));
    Preference pref(praw);
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
        sizeof(workspace_bytes_)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    KILN_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, desc.get(), lx.get(), ly.get(),
                                                     ld.get(), ld.get(), pref.get(), 1, &result,
                                                     &found));
    KILN_CHECK(found > 0, "cuBLASLt has no algorithm for a {}x{}x{} GEMM of {} into {}", g.m, g.n,
               g.k, dtype_name(g.ab_dtype), dtype_name(g.c_dtype));
    it = algos_.emplace(key, result.algo).first;
  }
  KILN_CUBLAS_CHECK(cublasLtMatmul(handle_, desc.get(), &g.alpha, g.b, lx.get(), g.a, ly.get(),
                                   &g.beta, g.c, ld.get(), g.c, ld.get(), &it->second, workspace_,
                                   workspace_bytes_, stream));
}

}  // namespace kiln::cuda
