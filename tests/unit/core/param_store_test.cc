// The flat parameter and gradient buffers (DESIGN decision 1): aligned layout in declaration
// order, views into both buffers, and the grad-ready hook that reports each newly final suffix
// of the gradient buffer during backward, whatever order the gradients finish in.
#include "core/param_store.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::test {
namespace {

TEST(ParamStore, LaysOutAlignedInDeclarationOrder) {
  ParamStore s;
  EXPECT_EQ(s.declare("a.weight", Shape{3, 5}, true), 0);  // 15 -> 16
  EXPECT_EQ(s.declare("a.bias", Shape{3}, false), 1);      // 3 -> 16
  EXPECT_EQ(s.declare("b.weight", Shape{4, 4}, true), 2);  // 16
  EXPECT_EQ(s.declare("b.bias", Shape{17}, false), 3);     // 17 -> 32
  s.finalize(cpu_device(), DType::f32);
  const int64_t offsets[] = {0, 16, 32, 48};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.infos()[i].offset, offsets[i]) << i;
  EXPECT_EQ(s.total(), 80);
  EXPECT_EQ(s.count(), 15 + 3 + 16 + 17);
  EXPECT_EQ(s.span_end(0), 16);
  EXPECT_EQ(s.span_end(3), 80);
  EXPECT_EQ(s.find("b.weight"), 2);
  EXPECT_EQ(s.find("c.weight"), -1);
  EXPECT_FALSE(s.infos()[1].decay);

  // Views into the flat buffers, with the declared shapes; the buffers start zeroed.
  EXPECT_EQ(s.param(2).shape(), (Shape{4, 4}));
  EXPECT_EQ(s.param(2).raw(), static_cast<void*>(s.params().data<float>() + 32));
  EXPECT_EQ(s.grad(3).raw(), static_cast<void*>(s.grads().data<float>() + 48));
  EXPECT_EQ(as_doubles(s.grads()), std::vector<double>(80, 0.0));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.param(1).raw()) % 64, 0u);
}

// Mixed precision: layers read a bf16 copy of the f32 master weights, rounded to nearest even,
// that follows the master weights only when refreshed (after each optimizer update).
TEST(ParamStore, ComputeCopyRoundsTheMasterWeights) {
  ParamStore s;
  s.declare("w", Shape{3}, true);
  s.declare("b", Shape{2}, false);
  s.finalize(cpu_device(), DType::f32);
  EXPECT_EQ(s.compute_dtype(), DType::f32);
  EXPECT_EQ(s.compute_param(0).raw(), s.param(0).raw());  // no copy in the master dtype
  float* p = s.params().data<float>();
  // 1 + 2^-9 rounds down to 1 in bf16 (8 significant bits); 1 + 3 * 2^-9 rounds up to 1 + 2^-7.
  p[0] = 1.0f + 1.0f / 512;
  p[1] = 1.0f + 3.0f / 512;
  p[2] = -2.5f;
  p[16] = 1e-3f;
  s.set_compute_dtype(DType::bf16);
  EXPECT_EQ(s.compute_dtype(), DType::bf16);
  Tensor w = s.compute_param(0), b = s.compute_param(1);
  EXPECT_EQ(w.dtype(), DType::bf16);
  EXPECT_EQ(w.shape(), (Shape{3}));
  EXPECT_EQ(as_doubles(w), (std::vector<double>{1.0, 1.0 + 1.0 / 128, -2.5}));
  EXPECT_EQ(as_doubles(b)[0], static_cast<double>(bf16_to_f32(f32_to_bf16(1e-3f))));
  p[2] = 7.0f;  // an update: the copy keeps the old value until refreshed
  EXPECT_EQ(as_doubles(s.compute_param(0))[2], -2.5);
  s.refresh_compute_params();
  EXPECT_EQ(as_doubles(s.compute_param(0))[2], 7.0);
  EXPECT_THROW(s.set_compute_dtype(DType::i32), Error);
}

TEST(ParamStore, RefusesLateOrDuplicateDeclarations) {
  ParamStore s;
  s.declare("w", Shape{2}, true);
  EXPECT_TRUE(contains(error_message([&] { s.declare("w", Shape{2}, true); }),
                       "parameter 'w' declared twice"));
  s.finalize(cpu_device(), DType::f32);
  EXPECT_TRUE(contains(error_message([&] { s.declare("v", Shape{2}, true); }),
                       "declared after the buffers were laid out"));
}

class GradReadyHook : public ::testing::Test {
 protected:
  void SetUp() override {
    // 5, 15, 25, 35 elements: offsets 0, 16, 32, 64; total 112.
    for (const char* name : {"p0", "p1", "p2", "p3"}) {
      s_.declare(name, Shape{5 + 10 * static_cast<int64_t>(s_.infos().size())}, true);
    }
    s_.finalize(cpu_device(), DType::f32);
    s_.set_grad_ready_hook([this](int64_t b, int64_t e) { ranges_.push_back({b, e}); });
    s_.begin_backward();
  }
  ParamStore s_;
  std::vector<std::pair<int64_t, int64_t>> ranges_;
};

TEST_F(GradReadyHook, ReverseOrderReportsOneRangePerParameter) {
  for (int id = 3; id >= 0; --id) s_.mark_grad_ready(id);
  const std::vector<std::pair<int64_t, int64_t>> want = {{64, 112}, {32, 64}, {16, 32}, {0, 16}};
  EXPECT_EQ(ranges_, want);
}

// A gradient that finishes before the ones after it waits until they are final: the ranges
// still arrive in decreasing order and tile the buffer once.
TEST_F(GradReadyHook, EarlyGradientWaitsForTheSuffix) {
  s_.mark_grad_ready(1);
  EXPECT_TRUE(ranges_.empty());
  s_.mark_grad_ready(3);
  s_.mark_grad_ready(2);
  s_.mark_grad_ready(0);
  const std::vector<std::pair<int64_t, int64_t>> want = {{64, 112}, {16, 64}, {0, 16}};
  EXPECT_EQ(ranges_, want);
  // The next backward starts over.
  ranges_.clear();
  s_.begin_backward();
  s_.mark_grad_ready(3);
  EXPECT_EQ(ranges_, (std::vector<std::pair<int64_t, int64_t>>{{64, 112}}));
}

}  // namespace
}  // namespace kiln::test
