// The shared argument checks (core/ops_check.h): on the CPU every bad call of op_rejects.h is
// refused with its message by the shared check (not by a CPU-only one), and every other device
// ("cuda/..." tests, ctest label "gpu") refuses it with the same message from the same file and
// line; mixed precision's f32 gradients are allowed exactly for 16-bit operands, and each
// backend names its own dtypes.
#include "core/ops_check.h"

#include <gtest/gtest.h>

#include "op_cases.h"
#include "op_rejects.h"
#include "test_util.h"

namespace kiln::test {
namespace {

class OpsCheckTest : public ::testing::TestWithParam<size_t> {};

TEST_P(OpsCheckTest, CpuRefusesWithTheSharedMessage) {
  const BadCall& bad = bad_calls()[GetParam()];
  Device& cpu = cpu_device();
  try {
    bad.call(cpu.ops(), cpu);
    ADD_FAILURE() << bad.name << " was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.message(), bad.message));
    EXPECT_TRUE(contains(e.location(), "core/ops_check.cc"));
  }
}

std::vector<size_t> bad_call_indices() {
  std::vector<size_t> out(bad_calls().size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = i;
  return out;
}

INSTANTIATE_TEST_SUITE_P(BadCalls, OpsCheckTest, ::testing::ValuesIn(bad_call_indices()),
                         [](const auto& info) { return bad_calls()[info.param].name; });

// The error of `call`, or an "accepted" marker.
std::pair<std::string, std::string> refusal(const BadCall& bad, Device& dev) {
  try {
    bad.call(dev.ops(), dev);
  } catch (const Error& e) {
    return {e.message(), e.location()};
  }
  return {"(accepted)", ""};
}

// One test per device type (a GPU test is a process that pays for a CUDA context), looping
// over the bad calls.
struct DeviceParam {
  DeviceType type;
};
void PrintTo(const DeviceParam& p, std::ostream* os) { *os << device_type_name(p.type); }

class DeviceRejectsTest : public ::testing::TestWithParam<DeviceParam> {};

TEST_P(DeviceRejectsTest, SameMessagesAsCpu) {
  std::string why;
  Device* dev = test_device(GetParam().type, &why);
  if (!dev) GTEST_SKIP() << why;
  for (const BadCall& bad : bad_calls()) {
    SCOPED_TRACE(bad.name);
    const auto want = refusal(bad, cpu_device());
    const auto got = refusal(bad, *dev);
    EXPECT_EQ(got.first, want.first);
    EXPECT_EQ(got.second, want.second);  // the same check: same file and line
  }
}

INSTANTIATE_TEST_SUITE_P(cuda, DeviceRejectsTest, ::testing::Values(DeviceParam{DeviceType::cuda}),
                         [](const auto& info) {
                           return std::string(device_type_name(info.param.type));
                         });

Tensor z(const Shape& s, DType t) { return Tensor::zeros(s, t, cpu_device()); }

TEST(OpsCheck, AccumulatorsMayBeF32OnlyFor16BitOperands) {
  auto accum = [](DType acc, DType operand) {
    check_accum_dtype(z(Shape{2}, acc), z(Shape{2}, operand), "op", "dw");
  };
  EXPECT_NO_THROW(accum(DType::f32, DType::bf16));
  EXPECT_NO_THROW(accum(DType::f32, DType::f16));
  EXPECT_NO_THROW(accum(DType::bf16, DType::bf16));
  EXPECT_NO_THROW(accum(DType::f64, DType::f64));
  EXPECT_TRUE(contains(error_message([&] { accum(DType::f32, DType::f64); }),
                       "op: dw is f32 but the operands are f64; it must be f64"));
  EXPECT_TRUE(contains(error_message([&] { accum(DType::bf16, DType::f32); }),
                       "op: dw is bf16 but the operands are f32; it must be f32"));
  EXPECT_TRUE(contains(error_message([&] { accum(DType::f16, DType::bf16); }),
                       "op: dw is f16 but the operands are bf16; it must be bf16 or f32"));
}

// The shared check lets bf16 operands with f32 gradients through (a GPU runs them); the CPU,
// whose kernels are f32 and f64 only, then refuses them by dtype.
TEST(OpsCheck, CpuRefusesMixedPrecisionByItsKernelDtypes) {
  Tensor x = z(Shape{4, 3}, DType::bf16), w = z(Shape{5, 3}, DType::bf16);
  Tensor dy = z(Shape{4, 5}, DType::bf16), dw = z(Shape{5, 3}, DType::f32);
  Tensor db = z(Shape{5}, DType::f32);
  EXPECT_NO_THROW(check_linear_backward(x, w, dy, nullptr, dw, db));
  EXPECT_TRUE(contains(
      error_message([&] { cpu_device().ops().linear_backward(x, w, dy, nullptr, dw, db); }),
      "linear_backward: the CPU kernels take f32 or f64, got bf16"));
}

TEST(OpsCheck, EachBackendNamesItsDtypes) {
  EXPECT_TRUE(
      contains(error_message([] { cpu_device().ops().sum_squares(z(Shape{3}, DType::i32)); }),
               "sum_squares: the CPU kernels take f32 or f64, got i32"));
  EXPECT_TRUE(contains(
      error_message([] { check_kernel_dtype(z(Shape{3}, DType::f64), "scale", kCudaFloats); }),
      "scale: the CUDA kernels take f32, bf16 or f16, got f64"));
  EXPECT_NO_THROW(check_kernel_dtype(z(Shape{3}, DType::f16), "scale", kCudaFloats));
}

}  // namespace
}  // namespace kiln::test
