// The one op suite (DESIGN decision 2): every op case of op_cases.h on every device, with random
// inputs, outputs poisoned with NaN before each run, NaN/Inf checked first, and the tolerance of
// each dtype stated below. The CPU is checked against plain-loop references in double; every
// other device against the CPU's kernels run in f64 on the same input values (in f32 where an op
// has no f64 kernel: the optimizers), and the CPU on offset views in the same way. Instantiated
// once per device type ("cpu/...", "cuda/..."): the CPU's tests carry the ctest label "unit", the
// others "gpu", and skip, naming the reason, when the build or the machine has no such device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>

#include "op_cases.h"
#include "test_util.h"

namespace kiln::test {
namespace {

// How a run's operands are given. The CPU runs f32 and f64 (a case's `dtypes`). Other devices
// run f32, and for cases with `half` bf16 and f16; "bf16_mixed" keeps the case's f32_when_mixed
// inputs (parameter gradients) in f32, as mixed-precision training does. "f32_offset" runs f32
// with every device tensor a view one element into its allocation (cases with offset_views).
enum class Variant { f32, f64, bf16, f16, bf16_mixed, f32_offset };

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::f32:
      return "f32";
    case Variant::f64:
      return "f64";
    case Variant::bf16:
      return "bf16";
    case Variant::f16:
      return "f16";
    case Variant::bf16_mixed:
      return "bf16_mixed";
    case Variant::f32_offset:
      return "f32_offset";
  }
  return "?";
}

// Tolerances of a device's output d against the f64 reference r: |d - r| <= rtol |r| +
// atol * scale, where scale is the largest |r| of that output (at least 1). Exact outputs
// (argmax, dropout masks, counts, flags) must match exactly.
//
// f32: the case's own f32 tolerance, the one the CPU's f32 kernels are held to (1e-5 relative
// unless the case says why it needs more: the transformer ops' exp and sums of T of them).
// tf32: cases with `tf32` set (matmul_*, linear_*, conv2d_*) run their f32 products on tensor
// cores with 10-bit mantissas (cuBLASLt's CUBLAS_COMPUTE_32F_FAST_TF32, cuDNN's
// CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION): each input is rounded by up to 2^-11 = 4.9e-4.
constexpr Tolerance kTf32{1e-3, 1e-3};
// bf16: the device gets 16-bit operands and the reference the same values in f64; the device
// rounds its outputs (and 16-bit accumulators) to 8 significant bits, 2^-9 = 2e-3 each time.
constexpr Tolerance kBf16{2e-2, 2e-2};
// f16: as bf16 with 11 significant bits (2^-12 per rounding).
constexpr Tolerance kF16{1e-2, 1e-2};

Tolerance device_tolerance(const OpCase& c, Variant v) {
  switch (v) {
    case Variant::f32:
    case Variant::f32_offset:
      return c.tf32 ? kTf32 : c.f32;
    case Variant::f64:
      return c.f64;
    case Variant::f16:
      return kF16;
    default:
      return kBf16;
  }
}

struct Inputs {
  std::vector<Tensor> device, reference;
};

// The device's inputs and the CPU reference run's inputs, holding the same values. 16-bit
// variants round each f32 input to 16 bits for the device (f32_when_mixed ones stay f32 in
// bf16_mixed). The reference gets those values in f64 when the case has f64 kernels, else in
// f32; inputs made in other dtypes (tokens, labels, masks, a cast's 16-bit side) stay as made.
Inputs prepare(const OpCase& c, Variant v, const std::vector<Tensor>& made) {
  const bool wide = std::count(c.dtypes.begin(), c.dtypes.end(), DType::f64) > 0;
  const bool half = v == Variant::bf16 || v == Variant::f16 || v == Variant::bf16_mixed;
  Inputs in;
  for (size_t k = 0; k < made.size(); ++k) {
    if (made[k].dtype() != DType::f32) {
      in.device.push_back(made[k]);
      in.reference.push_back(made[k]);
      continue;
    }
    const bool keep = !half || (v == Variant::bf16_mixed &&
                                std::count(c.f32_when_mixed.begin(), c.f32_when_mixed.end(), k));
    const Tensor d = keep ? made[k]
                          : from_doubles(values(made[k]), made[k].shape(),
                                         v == Variant::f16 ? DType::f16 : DType::bf16);
    in.device.push_back(d);
    in.reference.push_back(wide ? from_doubles(values(d), d.shape(), DType::f64)
                                : from_doubles(values(d), d.shape(), DType::f32));
  }
  return in;
}

std::string dims_str(const Dims& d) {
  std::ostringstream s;
  for (size_t i = 0; i < d.size(); ++i) s << (i ? "x" : "") << d[i];
  return s.str();
}

// The variants a case runs in on `device`.
std::vector<Variant> variants(DeviceType device, const OpCase& c) {
  std::vector<Variant> out;
  if (device == DeviceType::cpu) {
    for (DType t : c.dtypes) out.push_back(t == DType::f64 ? Variant::f64 : Variant::f32);
    // The CPU on views one element in, against its own run on whole tensors (in f64 where it
    // has f64 kernels): the other devices' path, so the harness is exercised without them.
    if (c.offset_views) out.push_back(Variant::f32_offset);
    return out;
  }
  out.push_back(Variant::f32);
  if (c.offset_views) out.push_back(Variant::f32_offset);
  if (!c.half) return out;
  out.push_back(Variant::bf16);
  out.push_back(Variant::f16);
  if (!c.f32_when_mixed.empty()) out.push_back(Variant::bf16_mixed);
  return out;
}

// One test per (device, case), looping over the variants and shapes: a test is a process under
// ctest, and a GPU process pays for its CUDA context (and compute-sanitizer's start) each time.
struct OpParam {
  DeviceType device;
  size_t op;  // index into op_cases()
};

// gtest prints a parameter with this when a test fails.
void PrintTo(const OpParam& p, std::ostream* os) {
  *os << device_type_name(p.device) << " " << op_cases()[p.op].name;
}

std::vector<OpParam> params(DeviceType device) {
  std::vector<OpParam> out;
  for (size_t i = 0; i < op_cases().size(); ++i) out.push_back({device, i});
  return out;
}

std::string param_name(const ::testing::TestParamInfo<OpParam>& info) {
  return op_cases()[info.param.op].name;
}

class OpsTest : public ::testing::TestWithParam<OpParam> {};

// Every variant and shape of the case, each shape on fresh random inputs.
TEST_P(OpsTest, MatchesReference) {
  const OpParam& p = GetParam();
  std::string why;
  Device* dev = test_device(p.device, &why);
  if (!dev) GTEST_SKIP() << why;
  const OpCase& c = op_cases()[p.op];
  Device& cpu = cpu_device();
  for (Variant v : variants(p.device, c)) {
    for (size_t s = 0; s < c.shapes.size(); ++s) {
      const Dims& dims = c.shapes[s];
      SCOPED_TRACE(c.name + " " + c.dims_meaning + " = " + dims_str(dims) + ", " + variant_name(v) +
                   " on " + dev->name());
      if (p.device == DeviceType::cpu && v != Variant::f32_offset) {
        const DType t = v == Variant::f64 ? DType::f64 : DType::f32;
        const std::vector<Tensor> inputs = c.make_inputs(dims, t, 1000 + s);
        expect_outputs_match(c.run(cpu.ops(), cpu, dims, inputs), c.reference(dims, inputs),
                             c.tolerance(t), variant_name(v));
      } else {
        const Inputs in = prepare(c, v, c.make_inputs(dims, DType::f32, 5000 + s));
        const OpOutputs want = c.run(cpu.ops(), cpu, dims, in.reference);
        std::optional<ScopedOffsetViews> offset;
        if (v == Variant::f32_offset) offset.emplace();
        const OpOutputs got = c.run(dev->ops(), *dev, dims, in.device);
        expect_outputs_match(got, want, device_tolerance(c, v), variant_name(v));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(cpu, OpsTest, ::testing::ValuesIn(params(DeviceType::cpu)), param_name);
// Listed whatever the build and machine, so that a build carried to a GPU machine has the same
// test names as here: the names come from the device type, never from what is visible.
INSTANTIATE_TEST_SUITE_P(cuda, OpsTest, ::testing::ValuesIn(params(DeviceType::cuda)), param_name);

// Every method of the Ops interface has at least one case, so a backend tested on these cases
// is tested on all of its kernels.
TEST(OpCases, CoverEveryOpsMethod) {
  const std::vector<std::string> methods = {"matmul",
                                            "linear_forward",
                                            "linear_backward",
                                            "conv2d_forward",
                                            "conv2d_backward",
                                            "maxpool2d_forward",
                                            "maxpool2d_backward",
                                            "relu_forward",
                                            "relu_backward",
                                            "gelu_forward",
                                            "gelu_backward",
                                            "dropout_forward",
                                            "dropout_backward",
                                            "softmax_xent",
                                            "embedding_forward",
                                            "embedding_backward",
                                            "layernorm_forward",
                                            "layernorm_backward",
                                            "attention_forward",
                                            "attention_backward",
                                            "add",
                                            "adamw_step",
                                            "sgd_step",
                                            "sum_squares",
                                            "scale",
                                            "all_finite",
                                            "cast"};
  std::set<std::string> names;
  for (const OpCase& c : op_cases()) {
    EXPECT_TRUE(names.insert(c.name).second) << "two cases are named " << c.name;
  }
  for (const std::string& m : methods) {
    bool found = std::any_of(names.begin(), names.end(),
                             [&](const std::string& n) { return n.rfind(m, 0) == 0; });
    EXPECT_TRUE(found) << "no op case exercises Ops::" << m;
  }
}

// The poisoning catches an op that leaves its output unwritten: a run whose op does nothing
// fails the comparison with NaN first.
TEST(OpCases, PoisonedOutputFailsTheComparison) {
  Tensor y = poisoned(cpu_device(), Shape{3}, DType::f32);
  ::testing::AssertionResult r = all_close(as_doubles(y), {0.0, 1.0, 2.0}, 1e-5, 1e-6);
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("nan"), std::string::npos) << r.message();
}

// The harness itself, with no device: a 16-bit variant gives the device 16-bit tensors and the
// reference f64 tensors holding exactly their values, and the mixed variant keeps the parameter
// gradients in f32.
TEST(OpCases, SixteenBitInputsAreTheReferenceInputsRounded) {
  const OpCase* lb = nullptr;
  for (const OpCase& c : op_cases()) {
    if (c.name == "linear_backward") lb = &c;
  }
  ASSERT_NE(lb, nullptr);
  ASSERT_EQ(lb->f32_when_mixed, (std::vector<size_t>{3, 4}));
  const std::vector<Tensor> made = lb->make_inputs(lb->shapes[1], DType::f32, 7);
  for (Variant v : {Variant::f32, Variant::bf16, Variant::f16, Variant::bf16_mixed}) {
    SCOPED_TRACE(variant_name(v));
    const Inputs in = prepare(*lb, v, made);
    ASSERT_EQ(in.reference.size(), made.size());
    for (size_t k = 0; k < made.size(); ++k) {
      const bool kept = v == Variant::f32 || (v == Variant::bf16_mixed && k >= 3);
      EXPECT_EQ(in.reference[k].dtype(), DType::f64);
      EXPECT_EQ(in.device[k].dtype(), kept                ? DType::f32
                                      : v == Variant::f16 ? DType::f16
                                                          : DType::bf16);
      EXPECT_EQ(values(in.reference[k]), values(in.device[k]));
      // Rounding moved the values, but by less than one 16-bit step.
      EXPECT_TRUE(
          all_close(values(in.device[k]), values(made[k]), kept ? 0 : 4e-3, kept ? 0 : 1e-7));
      if (!kept) {
        EXPECT_NE(values(in.device[k]), values(made[k]));
      }
    }
  }
}

// The offset runs really move the pointers off 16 bytes, for every dtype, and only while
// asked to; the values are unchanged.
TEST(OpCases, OffsetViewsAreNotSixteenByteAligned) {
  auto misaligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()) % 16 != 0; };
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::u8}) {
    SCOPED_TRACE(dtype_name(t));
    const Tensor host = Tensor::zeros(Shape{5}, t, cpu_device());
    EXPECT_FALSE(misaligned(on(cpu_device(), host)));
    ScopedOffsetViews offset;
    const Tensor moved = on(cpu_device(), host);
    EXPECT_TRUE(misaligned(moved));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(moved.raw()) % dtype_size(t), 0u);
    EXPECT_EQ(moved.shape(), host.shape());
    EXPECT_TRUE(misaligned(poisoned(cpu_device(), Shape{3}, t)));
  }
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, Shape{3});
  ScopedOffsetViews offset;
  EXPECT_EQ(values(on(cpu_device(), x)), (std::vector<double>{1, 2, 3}));
}

// A case without f64 kernels (the optimizers) is referenced by the CPU's f32 run.
TEST(OpCases, CasesWithoutF64KernelsAreReferencedInF32) {
  for (const OpCase& c : op_cases()) {
    if (c.name != "adamw_step") continue;
    const Inputs in = prepare(c, Variant::f32, c.make_inputs(c.shapes[0], DType::f32, 3));
    for (const Tensor& t : in.reference) EXPECT_EQ(t.dtype(), DType::f32);
    return;
  }
  FAIL() << "no adamw_step case";
}

}  // namespace
}  // namespace kiln::test
