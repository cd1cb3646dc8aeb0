// The CUDA device: one GPU, its compute stream, events, memory, and the library handles its
// kernels use (cuBLASLt, cuDNN), all RAII. Created by the backend registry when a GPU is
// visible; each rank opens the GPU of its local rank.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "core/device.h"

namespace kiln {

class CudaOps;

class CudaStream final : public Stream {
 public:
  explicit CudaStream(int device);
  ~CudaStream() override;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  void synchronize() override;
  void* native() override { return stream_; }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class CudaEvent final : public Event {
 public:
  explicit CudaEvent(int device);
  ~CudaEvent() override;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(Stream& stream) override;
  void wait(Stream& stream) override;
  void synchronize() override;
  bool query() override;

 private:
  cudaEvent_t event_ = nullptr;
};

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int index);
  ~CudaDevice() override;

  DeviceType type() const override { return DeviceType::cuda; }
  int index() const override { return index_; }
  std::string name() const override { return name_; }
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  void copy(void* dst, const void* src, size_t bytes, CopyKind kind, Stream* stream) override;
  void memset_zero(void* ptr, size_t bytes, Stream* stream) override;
  Stream& compute_stream() override { return *stream_; }
  std::unique_ptr<Stream> new_stream() override;
  std::unique_ptr<Event> new_event() override;
  Ops& ops() override;
  void synchronize() override;
  // Makes this GPU current on the calling thread (comm threads call it once).
  void make_current() const;

 private:
  int index_;
  std::string name_;
  std::unique_ptr<CudaStream> stream_;
  std::unique_ptr<CudaOps> ops_;
};

}  // namespace kiln
