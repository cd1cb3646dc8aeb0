// The CPU kernels against plain-loop references: one parameterised suite over
// (op case x shape x dtype) from op_cases.h, with the tolerance of each dtype stated there.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "op_cases.h"
#include "test_util.h"

namespace kiln::test {
namespace {

struct OpParam {
  size_t op;     // index into op_cases()
  size_t shape;  // index into the case's shapes
  DType dtype;
};

// gtest prints a parameter with this when a test fails.
void PrintTo(const OpParam& p, std::ostream* os) {
  *os << op_cases()[p.op].name << " shape #" << p.shape << " " << dtype_name(p.dtype);
}

std::vector<OpParam> all_params() {
  std::vector<OpParam> out;
  const auto& cases = op_cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    for (size_t s = 0; s < cases[i].shapes.size(); ++s) {
      for (DType t : cases[i].dtypes) out.push_back({i, s, t});
    }
  }
  return out;
}

std::string param_name(const ::testing::TestParamInfo<OpParam>& info) {
  const OpCase& c = op_cases()[info.param.op];
  std::string dims;
  for (int64_t d : c.shapes[info.param.shape]) {
    if (!dims.empty()) dims += 'x';
    dims += std::to_string(d);
  }
  return c.name + "_" + dims + "_" + dtype_name(info.param.dtype);
}

// Compares every output of a case run against its reference. atol is taken relative to the
// output's largest reference magnitude (at least 1), so long sums are judged against the size
// of what they sum to.
void expect_outputs_match(const OpCase& c, DType dtype, const OpOutputs& got,
                          const OpOutputs& want) {
  ASSERT_EQ(got.size(), want.size()) << c.name << ": number of outputs";
  const Tolerance tol = c.tolerance(dtype);
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_EQ(got[k].name, want[k].name);
    double scale = 1.0;
    for (double v : want[k].values) {
      if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
    }
    if (want[k].exact) {
      EXPECT_TRUE(all_close(got[k].values, want[k].values, 0, 0)) << "output " << want[k].name;
    } else {
      EXPECT_TRUE(all_close(got[k].values, want[k].values, tol.rtol, tol.atol * scale))
          << "output " << want[k].name << " (" << dtype_name(dtype) << ": rtol " << tol.rtol
          << ", atol " << tol.atol << " x " << scale << ")";
    }
  }
}

class OpsTest : public ::testing::TestWithParam<OpParam> {};

TEST_P(OpsTest, CpuMatchesPlainLoopReference) {
  const OpCase& c = op_cases()[GetParam().op];
  const Dims& dims = c.shapes[GetParam().shape];
  const DType dtype = GetParam().dtype;
  const uint64_t seed = 1000 + GetParam().shape;
  std::vector<Tensor> inputs = c.make_inputs(dims, dtype, seed);
  Device& cpu = cpu_device();
  OpOutputs got = c.run(cpu.ops(), cpu, dims, inputs);
  OpOutputs want = c.reference(dims, inputs);
  expect_outputs_match(c, dtype, got, want);
}

INSTANTIATE_TEST_SUITE_P(AllOps, OpsTest, ::testing::ValuesIn(all_params()), param_name);

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
                                            "adamw_step",
                                            "sgd_step",
                                            "sum_squares",
                                            "scale",
                                            "all_finite"};
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

}  // namespace
}  // namespace kiln::test
