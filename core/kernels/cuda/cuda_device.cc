// CUDA streams, events, memory, and the backend's registration.
#include "core/kernels/cuda/cuda_device.h"

#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/cuda_ops.h"
#include "core/log.h"

namespace kiln {

CudaStream::CudaStream(int device) {
  KILN_CUDA_CHECK(cudaSetDevice(device));
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaStream::~CudaStream() {
  if (stream_ && cudaStreamDestroy(stream_) != cudaSuccess) {
    KILN_LOG_WARN("cuda", "cudaStreamDestroy failed: {}", cudaGetErrorString(cudaGetLastError()));
  }
}

void CudaStream::synchronize() { KILN_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

CudaEvent::CudaEvent(int device) {
  KILN_CUDA_CHECK(cudaSetDevice(device));
  KILN_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
}

CudaEvent::~CudaEvent() {
  if (event_ && cudaEventDestroy(event_) != cudaSuccess) {
    KILN_LOG_WARN("cuda", "cudaEventDestroy failed: {}", cudaGetErrorString(cudaGetLastError()));
  }
}

void CudaEvent::record(Stream& stream) {
  KILN_CUDA_CHECK(cudaEventRecord(event_, static_cast<cudaStream_t>(stream.native())));
}
void CudaEvent::wait(Stream& stream) {
  KILN_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream.native()), event_, 0));
}
void CudaEvent::synchronize() { KILN_CUDA_CHECK(cudaEventSynchronize(event_)); }
bool CudaEvent::query() {
  cudaError_t e = cudaEventQuery(event_);
  if (e == cudaErrorNotReady) return false;
  KILN_CUDA_CHECK(e);
  return true;
}

CudaDevice::CudaDevice(int index) : index_(index) {
  KILN_CUDA_CHECK(cudaSetDevice(index));
  cudaDeviceProp prop{};
  KILN_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  name_ = fmt::format("cuda:{} ({}, sm_{}{}, {:.0f} GiB)", index, prop.name, prop.major,
                      prop.minor, prop.totalGlobalMem / 1073741824.0);
  stream_ = std::make_unique<CudaStream>(index);
  ops_ = std::make_unique<CudaOps>(*this, stream_->get());
}

CudaDevice::~CudaDevice() {
  ops_.reset();
  stream_.reset();
}

void CudaDevice::make_current() const { KILN_CUDA_CHECK(cudaSetDevice(index_)); }

void* CudaDevice::allocate(size_t bytes) {
  make_current();
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
  if (e != cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    KILN_FAIL("out of GPU memory on {}: asked for {:.1f} MiB, {:.1f} MiB free of {:.1f} MiB; "
              "lower train.micro_batch", name_, bytes / 1048576.0, free_b / 1048576.0,
              total_b / 1048576.0);
  }
  return p;
}

void CudaDevice::deallocate(void* ptr) noexcept {
  if (ptr && cudaFree(ptr) != cudaSuccess) {
    KILN_LOG_WARN("cuda", "cudaFree failed: {}", cudaGetErrorString(cudaGetLastError()));
  }
}

void CudaDevice::copy(void* dst, const void* src, size_t bytes, CopyKind kind, Stream* stream) {
  if (bytes == 0) return;
  cudaMemcpyKind k = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  cudaStream_t s = static_cast<cudaStream_t>((stream ? stream : stream_.get())->native());
  KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, s));
}

void CudaDevice::memset_zero(void* ptr, size_t bytes, Stream* stream) {
  if (bytes == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>((stream ? stream : stream_.get())->native());
  KILN_CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, s));
}

std::unique_ptr<Stream> CudaDevice::new_stream() { return std::make_unique<CudaStream>(index_); }
std::unique_ptr<Event> CudaDevice::new_event() { return std::make_unique<CudaEvent>(index_); }
Ops& CudaDevice::ops() { return *ops_; }
void CudaDevice::synchronize() { KILN_CUDA_CHECK(cudaDeviceSynchronize()); }

namespace {

int cuda_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the error so later calls are not confused by it
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

std::unique_ptr<Device> cuda_open(int index) { return std::make_unique<CudaDevice>(index); }

}  // namespace

void register_cuda_backend() {
  register_backend(BackendEntry{DeviceType::cuda, &cuda_count, &cuda_open, &cuda_why});
}

}  // namespace kiln
