// Devices, streams and events. A Device owns memory allocation, copies and the kernels (Ops) that
// run on its compute stream. The CPU device is always present; other backends register at start.
// Callers never test for a backend: they hold a Device& and call through it.
//
// Streams order work on one device. On the CPU every operation completes before it returns, so
// its streams and events are trivially ordered. Thread safety: a Device may be used from several
// threads; one Stream or Ops object is used by one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class Ops;

enum class DeviceType { cpu, cuda };
const char* device_type_name(DeviceType t);

class Stream {
 public:
  virtual ~Stream() = default;
  // Blocks the calling thread until all work queued on this stream is done.
  virtual void synchronize() = 0;
  // The backend's handle (cudaStream_t), or nullptr on the CPU.
  virtual void* native() = 0;
};

class Event {
 public:
  virtual ~Event() = default;
  // Marks the point in `stream`'s queue that wait() and synchronize() refer to.
  virtual void record(Stream& stream) = 0;
  // Makes `stream` wait for the recorded point without blocking the host.
  virtual void wait(Stream& stream) = 0;
  virtual void synchronize() = 0;
  virtual bool query() = 0;
};

enum class CopyKind { host_to_device, device_to_host, device_to_device };

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceType type() const = 0;
  virtual int index() const = 0;
  // Human-readable: "cpu (2 threads)", "cuda:0 (NVIDIA H100 80GB HBM3)".
  virtual std::string name() const = 0;

  // Memory aligned to at least 64 bytes; throws kiln::Error when out of memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr) noexcept = 0;
  // Copies on `stream` (the compute stream when null); host memory is plain memory.
  virtual void copy(void* dst, const void* src, size_t bytes, CopyKind kind,
                    Stream* stream = nullptr) = 0;
  virtual void memset_zero(void* ptr, size_t bytes, Stream* stream = nullptr) = 0;

  virtual Stream& compute_stream() = 0;
  virtual std::unique_ptr<Stream> new_stream() = 0;
  virtual std::unique_ptr<Event> new_event() = 0;
  // The kernels of this device, queued on its compute stream.
  virtual Ops& ops() = 0;
  virtual void synchronize() = 0;
};

// The CPU device; always available.
Device& cpu_device();

// A backend other than the CPU: how many devices it sees and how to open one.
struct BackendEntry {
  DeviceType type;
  int (*count)();  // devices visible now (0 when the driver or the device is missing)
  std::unique_ptr<Device> (*open)(int index);
  std::string (*why_unavailable)();  // one line when count() is 0
};
void register_backend(const BackendEntry& entry);
// Registers the backends compiled into this build (CUDA when built with it). Idempotent.
void register_builtin_backends();
// The registered backend of `type`, or nullopt when this build has none (CPU: always nullopt;
// it is cpu_device()). Tests use it to run on every device and to say why one is missing.
std::optional<BackendEntry> find_backend(DeviceType type);

// Picks the device for this rank: "cpu", "cuda", or "auto" (CUDA when a GPU is visible, else
// the CPU with one log line saying why). local_rank selects the GPU. The device lives for the
// rest of the process.
Device& select_device(const std::string& spec, int local_rank);

// CPU threads used by kernels: set once at start (OpenMP and OpenBLAS), read by the kernels.
void set_cpu_threads(int n);
int cpu_threads();
// Default threads per rank: the node's cores divided by the ranks sharing this node (at least 1).
int default_cpu_threads(int local_world);

}  // namespace kiln
