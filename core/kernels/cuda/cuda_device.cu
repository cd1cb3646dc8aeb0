// The CUDA backend's registration: counts the visible GPUs and explains when there are none.
#include <cuda_runtime.h>

#include "core/device.h"
#include "core/error.h"

namespace kiln {

namespace {

int cuda_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not confused by it
    return 0;
  }
  return n;
}

std::string cuda_why() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("cudaGetDeviceCount failed: {}", cudaGetErrorString(e));
  }
  return n == 0 ? "no CUDA device is visible" : "";
}

std::unique_ptr<Device> cuda_open(int index) {
  KILN_FAIL("GPU {} is visible, but this build's CUDA backend has no kernels yet; set "
            "train.device: cpu", index);
}

}  // namespace

void register_cuda_backend() {
  register_backend(BackendEntry{DeviceType::cuda, &cuda_count, &cuda_open, &cuda_why});
}

}  // namespace kiln
