// cuBLASLt GEMMs for row-major tensors: computed as the column-major product C^T = op(B)^T op(A)^T,
// so no data is transposed.
#include "core/kernels/cuda/cublaslt_gemm.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      KILN_FAIL("cuBLASLt GEMM: dtype {} is not supported (f32, bf16, f16)", dtype_name(t));
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

// The alignment (a power of two up to 256 bytes) that a matrix's pointer and row stride both
// have. cuBLASLt's heuristic assumes 256 unless told, and an algorithm chosen for 256 may fail
// on a view at an offset of a flat buffer (parameters are 64-byte aligned, activations less).
uint32_t alignment(const void* p, int64_t ld, DType t) {
  uint64_t bits = reinterpret_cast<uintptr_t>(p) | static_cast<uint64_t>(ld) * dtype_size(t) | 256;
  return static_cast<uint32_t>(bits & (~bits + 1));  // lowest set bit
}

void set_alignment(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
                   uint32_t bytes) {
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes)));
}

// The operation: transposes, compute type, and the bias epilogue when `bias`.
MatmulDesc describe(const Gemm& g, cublasComputeType_t compute, bool bias) {
  cublasLtMatmulDesc_t raw = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&raw, compute, CUDA_R_32F));
  MatmulDesc desc(raw);
  // Column-major view: D (n x m) = X (n x k) * Y (k x m), X = op(b)^T, Y = op(a)^T.
  cublasOperation_t tx = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t ty = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, &tx, sizeof(tx)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, &ty, sizeof(ty)));
  if (bias) {
    const cudaDataType_t ct = cuda_type(g.c_dtype);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                     &epi, sizeof(epi)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &g.bias, sizeof(g.bias)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct, sizeof(ct)));
  }
  return desc;
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
  // The heuristic cannot be told the bias's alignment, and the epilogue may load it in vectors:
  // a bias view that is not 16-byte aligned is added by our own kernel after the product.
  const bool epilogue_bias = g.bias && reinterpret_cast<uintptr_t>(g.bias) % 16 == 0;
  Layout lx = g.trans_b ? layout(ab, g.k, g.n, g.ldb) : layout(ab, g.n, g.k, g.ldb);
  Layout ly = g.trans_a ? layout(ab, g.m, g.k, g.lda) : layout(ab, g.k, g.m, g.lda);
  Layout ld = layout(ct, g.n, g.m, g.ldc);

  // cuBLASLt's A is our op(b)^T and its B our op(a)^T.
  const uint32_t align_x = alignment(g.b, g.ldb, g.ab_dtype);
  const uint32_t align_y = alignment(g.a, g.lda, g.ab_dtype);
  const uint32_t align_c = alignment(g.c, g.ldc, g.c_dtype);
  Key key{g.trans_a,
          g.trans_b,
          g.m,
          g.n,
          g.k,
          static_cast<int>(g.ab_dtype),
          static_cast<int>(g.c_dtype),
          g.lda,
          g.ldb,
          g.ldc,
          g.beta != 0.f,
          align_x,
          align_y,
          align_c,
          epilogue_bias};
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    cublasLtMatmulPreference_t praw = nullptr;
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&praw));
    Preference pref(praw);
    KILN_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &workspace_bytes_, sizeof(workspace_bytes_)));
    set_alignment(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_x);
    set_alignment(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_y);
    set_alignment(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c);
    set_alignment(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c);
    // f32 operands run on TF32 tensor cores (within the tf32 tolerance of the op tests); when
    // no TF32 algorithm takes these alignments, in full f32.
    std::vector<cublasComputeType_t> computes{CUBLAS_COMPUTE_32F};
    if (g.ab_dtype == DType::f32) computes.insert(computes.begin(), CUBLAS_COMPUTE_32F_FAST_TF32);
    for (cublasComputeType_t compute : computes) {
      MatmulDesc desc = describe(g, compute, epilogue_bias);
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      const cublasStatus_t st =
          cublasLtMatmulAlgoGetHeuristic(handle_, desc.get(), lx.get(), ly.get(), ld.get(),
                                         ld.get(), pref.get(), 1, &result, &found);
      if (st == CUBLAS_STATUS_NOT_SUPPORTED) continue;  // no algorithm: the same as found == 0
      KILN_CUBLAS_CHECK(st);
      if (found > 0) {
        it = algos_.emplace(key, Choice{result.algo, compute}).first;
        break;
      }
    }
    KILN_CHECK(it != algos_.end(),
               "cuBLASLt has no algorithm for a {}x{}x{} GEMM of {} into {} (alignments {}, {}, "
               "{} bytes)",
               g.m, g.n, g.k, dtype_name(g.ab_dtype), dtype_name(g.c_dtype), align_y, align_x,
               align_c);
  }
  MatmulDesc desc = describe(g, it->second.compute, epilogue_bias);
  KILN_CUBLAS_CHECK(cublasLtMatmul(handle_, desc.get(), &g.alpha, g.b, lx.get(), g.a, ly.get(),
                                   &g.beta, g.c, ld.get(), g.c, ld.get(), &it->second.algo,
                                   workspace_, workspace_bytes_, stream));
  if (g.bias && !epilogue_bias) {
    KILN_CHECK(g.ldc == g.n, "GEMM bias without the epilogue needs a contiguous c");
    add_bias_channels(g.c_dtype, g.c, g.bias, g.m, g.n, 1, stream);
  }
}

}  // namespace kiln::cuda
