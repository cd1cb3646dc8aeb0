// Activations, residual addition, scaling and dtype conversion: memory-bound, so 16-byte
// vectorised and coalesced, with a scalar tail.
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

// y[i] = op(x[i]). vec: the pointers are 16-byte aligned, so whole vectors are loaded; the rest
// goes one by one. Not __restrict__: y may be x (scale works in place, add writes into a or b),
// and each element is read before the same thread writes it.
template <typename T, typename Op>
__global__ void map1(const T* x, T* y, int64_t n, bool vec, Op op) {
  constexpr int N = Vec<T>::kN;
  const int64_t nv = vec ? n / N : 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += stride) {
    Vec<T> a = load_vec(x + i * N), out;
#pragma unroll
    for (int k = 0; k < N; ++k) out.v[k] = from_f32<T>(op(to_f32(a.v[k])));
    store_vec(y + i * N, out);
  }
  for (int64_t i = nv * N + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    y[i] = from_f32<T>(op(to_f32(x[i])));
  }
}

template <typename T, typename Op>
__global__ void map2(const T* a, const T* b, T* y, int64_t n, bool vec, Op op) {
  constexpr int N = Vec<T>::kN;
  const int64_t nv = vec ? n / N : 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += stride) {
    Vec<T> va = load_vec(a + i * N), vb = load_vec(b + i * N), out;
#pragma unroll
    for (int k = 0; k < N; ++k) out.v[k] = from_f32<T>(op(to_f32(va.v[k]), to_f32(vb.v[k])));
    store_vec(y + i * N, out);
  }
  for (int64_t i = nv * N + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    y[i] = from_f32<T>(op(to_f32(a[i]), to_f32(b[i])));
  }
}

template <typename T, typename Op>
void launch_map1(const void* x, void* y, int64_t n, Op op, cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16(x) && aligned16(y);
  map1<T><<<blocks_for(n, vec ? Vec<T>::kN : 1), kThreads, 0, s>>>(static_cast<const T*>(x),
                                                                   static_cast<T*>(y), n, vec, op);
}

template <typename T, typename Op>
void launch_map2(const void* a, const void* b, void* y, int64_t n, Op op, cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16(a) && aligned16(b) && aligned16(y);
  map2<T><<<blocks_for(n, vec ? Vec<T>::kN : 1), kThreads, 0, s>>>(
      static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y), n, vec, op);
}

struct Relu {
  __device__ float operator()(float v) const { return v > 0.f ? v : 0.f; }
};
struct ReluGrad {
  __device__ float operator()(float y, float dy) const { return y > 0.f ? dy : 0.f; }
};
struct Gelu {
  __device__ float operator()(float v) const {
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.f + tanhf(u));
  }
};
struct GeluGrad {
  __device__ float operator()(float v, float dy) const {
    const float t = tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v));
    const float du = 0.7978845608028654f * (1.f + 3.f * 0.044715f * v * v);
    return dy * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
  }
};
struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Scale {
  float a;
  __device__ float operator()(float v) const { return v * a; }
};

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n,
                               bool accumulate) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float v = to_f32(src[i]);
    if (accumulate) v += to_f32(dst[i]);
    dst[i] = from_f32<D>(v);
  }
}

}  // namespace

void relu_forward(DType dt, const void* x, void* y, int64_t n, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) { launch_map1<decltype(t)>(x, y, n, Relu{}, s); });
}
void relu_backward(DType dt, const void* y, const void* dy, void* dx, int64_t n, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) { launch_map2<decltype(t)>(y, dy, dx, n, ReluGrad{}, s); });
}
void gelu_forward(DType dt, const void* x, void* y, int64_t n, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) { launch_map1<decltype(t)>(x, y, n, Gelu{}, s); });
}
void gelu_backward(DType dt, const void* x, const void* dy, void* dx, int64_t n, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) { launch_map2<decltype(t)>(x, dy, dx, n, GeluGrad{}, s); });
}
void add(DType dt, const void* a, const void* b, void* y, int64_t n, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) { launch_map2<decltype(t)>(a, b, y, n, Add{}, s); });
}
void scale(DType dt, void* x, float alpha, int64_t n, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) { launch_map1<decltype(t)>(x, x, n, Scale{alpha}, s); });
}

void convert(DType src_dt, const void* src, DType dst_dt, void* dst, int64_t n, bool accumulate,
             cudaStream_t s) {
  if (n == 0) return;
  dispatch_float(src_dt, [&](auto a) {
    dispatch_float(dst_dt, [&](auto b) {
      using S = decltype(a);
      using D = decltype(b);
      convert_kernel<S, D><<<blocks_for(n), kThreads, 0, s>>>(static_cast<const S*>(src),
                                                              static_cast<D*>(dst), n, accumulate);
    });
  });
}

}  // namespace kiln::cuda
