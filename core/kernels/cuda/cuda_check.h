// One check macro per CUDA library, each throwing kiln::Error with the statement and file:line.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"

#define KILN_CUDA_CHECK(expr)                                                                 \
  do {                                                                                        \
    cudaError_t kiln_e_ = (expr);                                                             \
    if (kiln_e_ != cudaSuccess) [[unlikely]] {                                                \
      ::kiln::throw_error(::fmt::format("CUDA error {}: {}", cudaGetErrorName(kiln_e_),       \
                                        cudaGetErrorString(kiln_e_)),                         \
                          #expr, __FILE__, __LINE__);                                         \
    }                                                                                         \
  } while (0)

#define KILN_CUBLAS_CHECK(expr)                                                               \
  do {                                                                                        \
    cublasStatus_t kiln_s_ = (expr);                                                          \
    if (kiln_s_ != CUBLAS_STATUS_SUCCESS) [[unlikely]] {                                      \
      ::kiln::throw_error(::fmt::format("cuBLAS error {}", cublasLtGetStatusString(kiln_s_)),   \
                          #expr, __FILE__, __LINE__);                                         \
    }                                                                                         \
  } while (0)

#define KILN_CUDNN_CHECK(expr)                                                                \
  do {                                                                                        \
    cudnnStatus_t kiln_s_ = (expr);                                                           \
    if (kiln_s_ != CUDNN_STATUS_SUCCESS) [[unlikely]] {                                       \
      ::kiln::throw_error(::fmt::format("cuDNN error {}", cudnnGetErrorString(kiln_s_)),      \
                          #expr, __FILE__, __LINE__);                                         \
    }                                                                                         \
  } while (0)
