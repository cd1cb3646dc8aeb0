// The CPU device, the backend registry and device selection.
#include "core/device.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/kernels/cpu/cpu_ops.h"
#include "core/log.h"

extern "C" void openblas_set_num_threads(int);

namespace kiln {

const char* device_type_name(DeviceType t) { return t == DeviceType::cpu ? "cpu" : "cuda"; }

namespace {

class CpuStream final : public Stream {
 public:
  void synchronize() override {}
  void* native() override { return nullptr; }
};

class CpuEvent final : public Event {
 public:
  void record(Stream&) override {}
  void wait(Stream&) override {}
  void synchronize() override {}
  bool query() override { return true; }
};

class CpuDevice final : public Device {
 public:
  DeviceType type() const override { return DeviceType::cpu; }
  int index() const override { return 0; }
  std::string name() const override { return fmt::format("cpu ({} threads)", cpu_threads()); }

  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    KILN_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
    return p;
  }
  void deallocate(void* ptr) noexcept override { std::free(ptr); }
  void copy(void* dst, const void* src, size_t bytes, CopyKind, Stream*) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void memset_zero(void* ptr, size_t bytes, Stream*) override {
    if (bytes) std::memset(ptr, 0, bytes);
  }
  Stream& compute_stream() override { return stream_; }
  std::unique_ptr<Stream> new_stream() override { return std::make_unique<CpuStream>(); }
  std::unique_ptr<Event> new_event() override { return std::make_unique<CpuEvent>(); }
  Ops& ops() override { return ops_; }
  void synchronize() override {}

 private:
  CpuStream stream_;
  CpuOps ops_;
};

struct Registry {
  std::mutex mu;
  std::vector<BackendEntry> backends;
  std::vector<std::unique_ptr<Device>> opened;
  bool builtins_registered = false;
};

Registry& registry() {
  static Registry r;
  return r;
}

int g_cpu_threads = 0;

}  // namespace

Device& cpu_device() {
  static CpuDevice device;
  return device;
}

void register_backend(const BackendEntry& entry) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const BackendEntry& e : r.backends) {
    if (e.type == entry.type) return;
  }
  r.backends.push_back(entry);
}

#if defined(KILN_WITH_CUDA)
void register_cuda_backend();  // core/kernels/cuda/cuda_device.cc
#endif

void register_builtin_backends() {
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    if (registry().builtins_registered) return;
    registry().builtins_registered = true;
  }
#if defined(KILN_WITH_CUDA)
  register_cuda_backend();
#endif
}

std::optional<BackendEntry> find_backend(DeviceType type) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const BackendEntry& e : r.backends) {
    if (e.type == type) return e;
  }
  return std::nullopt;
}

Device& select_device(const std::string& spec, int local_rank) {
  KILN_CHECK(spec == "auto" || spec == "cpu" || spec == "cuda",
             "train.device is '{}': expected auto, cpu or cuda", spec);
  if (spec == "cpu") return cpu_device();
  register_builtin_backends();
  Registry& r = registry();
  const std::optional<BackendEntry> cuda = find_backend(DeviceType::cuda);
  std::string why = "this build has no CUDA backend (no nvcc was found when it was configured)";
  if (cuda) {
    int n = cuda->count();
    if (n > 0) {
      std::unique_ptr<Device> dev = cuda->open(local_rank % n);
      std::lock_guard<std::mutex> lock(r.mu);
      r.opened.push_back(std::move(dev));
      return *r.opened.back();
    }
    why = cuda->why_unavailable();
  }
  KILN_CHECK(spec != "cuda",
             "train.device is 'cuda' but no GPU can be used: {}; set "
             "train.device: cpu (or auto) to train on the CPU",
             why);
  KILN_LOG_INFO("device", "device auto: no usable GPU ({}); training on the CPU", why);
  return cpu_device();
}

void set_cpu_threads(int n) {
  KILN_CHECK(n >= 1, "CPU thread count must be at least 1, got {}", n);
  g_cpu_threads = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int cpu_threads() {
  if (g_cpu_threads == 0) set_cpu_threads(default_cpu_threads(1));
  return g_cpu_threads;
}

int default_cpu_threads(int local_world) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  int per_rank = static_cast<int>(cores / std::max(1, local_world));
  return std::max(1, per_rank);
}

}  // namespace kiln
