// Row-major GEMMs through cuBLASLt, with the bias epilogue, for f32 (TF32 tensor cores allowed),
// bf16 and f16 operands (f32 accumulation; the output may be f32 while the inputs are 16-bit).
// Algorithms are chosen by cuBLASLt's heuristic once per shape and pointer alignment, and cached.
// Work is queued on the caller's stream.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "core/dtype.h"

namespace kiln::cuda {

struct Gemm {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;  // op(a) is (m, k), op(b) is (k, n), c is (m, n); row-major
  DType ab_dtype = DType::f32;  // a and b
  DType c_dtype = DType::f32;
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  int64_t lda = 0, ldb = 0, ldc = 0;  // row-major leading dimensions
  float alpha = 1.f, beta = 0.f;
  const void* bias = nullptr;  // (n), added to every row of c; same dtype as c. Without the
                               // epilogue (a bias not 16-byte aligned) c must be contiguous.
};

class GemmRunner {
 public:
  GemmRunner();
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;
  void run(const Gemm& g, cudaStream_t stream);

 private:
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;
  // Shape, dtypes, strides, beta != 0, the alignments of a, b and c the algorithm was chosen
  // for, and whether the bias epilogue is used.
  using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int, int, int64_t, int64_t, int64_t,
                         bool, uint32_t, uint32_t, uint32_t, bool>;
  struct Choice {
    cublasLtMatmulAlgo_t algo;
    cublasComputeType_t compute;  // TF32 for f32 operands unless no TF32 algorithm fits
  };
  std::map<Key, Choice> algos_;
};

}  // namespace kiln::cuda
