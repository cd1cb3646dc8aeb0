// NVML through dlopen: the few entry points the metrics use, declared here with NVML's C
// signatures so that no NVML header is needed to build.
#include "core/gpu_monitor.h"

#include <dlfcn.h>

#include <cstdlib>
#include <sstream>
#include <type_traits>

#include "core/log.h"

namespace kiln {

namespace {

// NVML's C types, as its API defines them.
using NvmlReturn = int;  // NVML_SUCCESS == 0
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
struct NvmlUtilization {
  unsigned int gpu, memory;
};

}  // namespace

struct GpuMonitor::Api {
  void* lib = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*by_uuid)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*power)(NvmlDevice, unsigned int*) = nullptr;  // milliwatts
  bool initialised = false;
  ~Api() {
    if (initialised) shutdown();
    if (lib) dlclose(lib);
  }
};

std::pair<int, std::string> nvml_device_for(int cuda_index, const std::string& visible) {
  if (visible.empty()) return {cuda_index, ""};
  std::vector<std::string> entries;
  std::stringstream ss(visible);
  for (std::string e; std::getline(ss, e, ',');) entries.push_back(e);
  if (cuda_index < 0 || cuda_index >= static_cast<int>(entries.size())) return {-1, ""};
  const std::string& e = entries[static_cast<size_t>(cuda_index)];
  if (e.rfind("GPU-", 0) == 0) return {-1, e};
  char* end = nullptr;
  const long v = std::strtol(e.c_str(), &end, 10);
  if (end != e.c_str() && *end == '\0' && v >= 0) return {static_cast<int>(v), ""};
  return {-1, ""};
}

std::unique_ptr<GpuMonitor> GpuMonitor::open(int cuda_index, const std::string& library) {
  auto api = std::make_unique<Api>();
  api->lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!api->lib) {
    KILN_LOG_DEBUG("train", "no GPU metrics: cannot load {} ({})", library, dlerror());
    return nullptr;
  }
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(api->lib, name));
    return fn != nullptr;
  };
  if (!sym(api->init, "nvmlInit_v2") || !sym(api->shutdown, "nvmlShutdown") ||
      !sym(api->by_index, "nvmlDeviceGetHandleByIndex_v2") ||
      !sym(api->by_uuid, "nvmlDeviceGetHandleByUUID") ||
      !sym(api->memory, "nvmlDeviceGetMemoryInfo") ||
      !sym(api->utilization, "nvmlDeviceGetUtilizationRates") ||
      !sym(api->power, "nvmlDeviceGetPowerUsage")) {
    KILN_LOG_DEBUG("train", "no GPU metrics: {} lacks an NVML entry point", library);
    return nullptr;
  }
  if (api->init() != 0) {
    KILN_LOG_DEBUG("train", "no GPU metrics: nvmlInit failed");
    return nullptr;
  }
  api->initialised = true;
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  const auto [index, uuid] = nvml_device_for(cuda_index, visible ? visible : "");
  NvmlDevice dev = nullptr;
  const NvmlReturn rc = index >= 0      ? api->by_index(static_cast<unsigned>(index), &dev)
                        : !uuid.empty() ? api->by_uuid(uuid.c_str(), &dev)
                                        : -1;
  if (rc != 0) {
    KILN_LOG_DEBUG("train", "no GPU metrics: NVML does not know CUDA device {}", cuda_index);
    return nullptr;
  }
  std::unique_ptr<GpuMonitor> m(new GpuMonitor());
  m->api_ = std::move(api);
  m->device_ = dev;
  return m;
}

GpuMonitor::~GpuMonitor() = default;

std::vector<std::pair<std::string, double>> GpuMonitor::sample() {
  std::vector<std::pair<std::string, double>> out;
  NvmlMemory mem{};
  if (api_->memory(device_, &mem) == 0) {
    out.emplace_back("gpu_memory_used_mb", static_cast<double>(mem.used) / (1 << 20));
    out.emplace_back("gpu_memory_total_mb", static_cast<double>(mem.total) / (1 << 20));
  }
  NvmlUtilization util{};
  if (api_->utilization(device_, &util) == 0) out.emplace_back("gpu_util_pct", util.gpu);
  unsigned int mw = 0;
  if (api_->power(device_, &mw) == 0) out.emplace_back("gpu_power_w", mw / 1000.0);
  return out;
}

}  // namespace kiln
