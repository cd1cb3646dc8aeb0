// GPU metrics degrade to nothing: a missing NVML library gives no monitor (and no error); the
// CUDA device maps to its NVML device through CUDA_VISIBLE_DEVICES by index or UUID.
#include "core/gpu_monitor.h"

#include <gtest/gtest.h>

namespace kiln::test {
namespace {

TEST(GpuMonitor, MissingLibraryGivesNoMonitor) {
  EXPECT_EQ(GpuMonitor::open(0, "libkiln-no-such-nvml.so.1"), nullptr);
  // A library that loads but is not NVML.
  EXPECT_EQ(GpuMonitor::open(0, "libz.so.1"), nullptr);
}

TEST(GpuMonitor, CudaIndexToNvmlDevice) {
  using P = std::pair<int, std::string>;
  EXPECT_EQ(nvml_device_for(1, ""), P(1, ""));
  EXPECT_EQ(nvml_device_for(0, "3,1"), P(3, ""));
  EXPECT_EQ(nvml_device_for(1, "3,1"), P(1, ""));
  EXPECT_EQ(nvml_device_for(2, "3,1"), P(-1, ""));  // not visible
  EXPECT_EQ(nvml_device_for(1, "2,GPU-8f3a-11"), P(-1, "GPU-8f3a-11"));
  EXPECT_EQ(nvml_device_for(0, "MIG-abc"), P(-1, ""));
}

}  // namespace
}  // namespace kiln::test
