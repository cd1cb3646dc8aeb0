// GPU memory, utilisation and power for the metrics, read through NVML, which is loaded with
// dlopen when the driver provides it: a build or a machine without it reports nothing and needs
// nothing (no NVML header or library at build time).
//
// Thread safety: one GpuMonitor per thread (the trainer's, on logging steps).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

class GpuMonitor {
 public:
  // The monitor of CUDA device `cuda_index` (as this process numbers it: CUDA_VISIBLE_DEVICES
  // is honoured, by index or GPU UUID), or nullptr - with a debug log line saying why - when
  // `library` cannot be loaded or does not know the device.
  static std::unique_ptr<GpuMonitor> open(int cuda_index,
                                          const std::string& library = "libnvidia-ml.so.1");
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  // The readings NVML answered, as metrics fields: gpu_memory_used_mb, gpu_memory_total_mb,
  // gpu_util_pct, gpu_power_w. A reading the device does not support is left out.
  std::vector<std::pair<std::string, double>> sample();

  struct Api;  // the NVML entry points (gpu_monitor.cc)

 private:
  GpuMonitor() = default;
  std::unique_ptr<Api> api_;
  void* device_ = nullptr;  // nvmlDevice_t
};

// Which NVML device CUDA device `cuda_index` is, given CUDA_VISIBLE_DEVICES (`visible`, empty
// when unset): {index, ""} or {-1, uuid}; {-1, ""} when it cannot be told (MIG instances).
std::pair<int, std::string> nvml_device_for(int cuda_index, const std::string& visible);

}  // namespace kiln
