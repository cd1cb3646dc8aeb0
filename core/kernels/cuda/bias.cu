// Bias broadcast over channels and bias gradients (column sums / per-channel sums, f32 math)
// into db of the operands' dtype or f32.
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

template <typename T>
__global__ void add_bias_channels_kernel(T* __restrict__ y, const T* __restrict__ b, int64_t n,
                                         int64_t c, int64_t hw) {
  const int64_t total = n * c * hw;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t ch = (i / hw) % c;
    y[i] = from_f32<T>(to_f32(y[i]) + to_f32(b[ch]));
  }
}

// One block per 32 columns; threads stride over rows, then reduce in shared memory.
template <typename T, typename G>
__global__ void bias_grad_rows_kernel(const T* __restrict__ dy, G* __restrict__ db, int64_t rows,
                                      int64_t cols) {
  __shared__ float acc[8][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  float sum = 0.f;
  if (col < cols) {
    for (int64_t r = threadIdx.y; r < rows; r += blockDim.y) sum += to_f32(dy[r * cols + col]);
  }
  acc[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float total = 0.f;
    for (int k = 0; k < static_cast<int>(blockDim.y); ++k) total += acc[k][threadIdx.x];
    db[col] = from_f32<G>(to_f32(db[col]) + total);
  }
}

// One block per channel.
template <typename T, typename G>
__global__ void bias_grad_channels_kernel(const T* __restrict__ dy, G* __restrict__ db, int64_t n,
                                          int64_t c, int64_t hw) {
  __shared__ float scratch[32];
  const int64_t ch = blockIdx.x;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < n * hw; i += blockDim.x) {
    const int64_t s = i / hw, p = i % hw;
    sum += to_f32(dy[(s * c + ch) * hw + p]);
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) db[ch] = from_f32<G>(to_f32(db[ch]) + sum);
}

}  // namespace

void add_bias_channels(DType dt, void* y, const void* bias, int64_t n, int64_t c, int64_t hw,
                       cudaStream_t s) {
  const int64_t total = n * c * hw;
  if (total == 0) return;
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    add_bias_channels_kernel<T><<<blocks_for(total), kThreads, 0, s>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), n, c, hw);
  });
}

void bias_grad_rows(DType dt, DType gdt, const void* dy, void* db, int64_t rows, int64_t cols,
                    cudaStream_t s) {
  if (rows == 0 || cols == 0) return;
  dim3 block(32, 8);
  dim3 grid(static_cast<unsigned>((cols + 31) / 32));
  dispatch_float(dt, [&](auto t) {
    dispatch_float(gdt, [&](auto g) {
      using T = decltype(t);
      using G = decltype(g);
      bias_grad_rows_kernel<T, G>
          <<<grid, block, 0, s>>>(static_cast<const T*>(dy), static_cast<G*>(db), rows, cols);
    });
  });
}

void bias_grad_channels(DType dt, DType gdt, const void* dy, void* db, int64_t n, int64_t c,
                        int64_t hw, cudaStream_t s) {
  if (n * c * hw == 0) return;
  dispatch_float(dt, [&](auto t) {
    dispatch_float(gdt, [&](auto g) {
      using T = decltype(t);
      using G = decltype(g);
      bias_grad_channels_kernel<T, G><<<static_cast<unsigned>(c), kThreads, 0, s>>>(
          static_cast<const T*>(dy), static_cast<G*>(db), n, c, hw);
    });
  });
}

}  // namespace kiln::cuda
