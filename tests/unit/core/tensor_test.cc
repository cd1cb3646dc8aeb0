// Shapes (element counts, printing, limits) and tensor views: views and reshapes share storage,
// slices land at the right offsets, and out-of-range views, reshapes and accesses are errors.
#include "core/tensor.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::test {
namespace {

TEST(Shape, CountsPrintsAndCompares) {
  Shape s{64, 1, 28, 28};
  EXPECT_EQ(s.ndim(), 4);
  EXPECT_EQ(s.numel(), 50176);
  EXPECT_EQ(s.str(), "(64, 1, 28, 28)");
  EXPECT_EQ(s[-1], 28);
  EXPECT_EQ(s[0], 64);
  EXPECT_EQ(s.to_vector(), (std::vector<int64_t>{64, 1, 28, 28}));
  EXPECT_EQ(s, Shape(std::vector<int64_t>{64, 1, 28, 28}));
  EXPECT_NE(s, (Shape{64, 1, 28}));
  EXPECT_NE(s, (Shape{64, 1, 28, 27}));
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar
  EXPECT_EQ(Shape{}.str(), "()");
  EXPECT_EQ((Shape{3, 0, 2}).numel(), 0);
}

TEST(Shape, RejectsTooManyOrNegativeDimensions) {
  EXPECT_TRUE(contains(error_message([] { Shape s{1, 2, 3, 4, 5, 6, 7}; }),
                       "shape has 7 dims, at most 6 are supported"));
  EXPECT_TRUE(contains(error_message([] {
                         Shape s(std::vector<int64_t>{2, -1});
                       }),
                       "negative dimension -1"));
}

Tensor iota(const Shape& s) {
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_vector(v, s);
}

TEST(Tensor, ZerosFromVectorAndBack) {
  Tensor z = Tensor::zeros(Shape{3, 5}, DType::f64, cpu_device());
  EXPECT_EQ(z.to_vector<double>(), std::vector<double>(15, 0.0));
  Tensor t = iota(Shape{2, 3});
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_TRUE(t.is_cpu());
  EXPECT_TRUE(contains(error_message([] {
                         Tensor::from_vector(std::vector<float>{1, 2}, Shape{3});
                       }),
                       "2 values do not fill shape (3)"));
}

TEST(Tensor, ViewsShareStorageAtTheirOffset) {
  Tensor t = iota(Shape{4, 5});
  Tensor v = t.view(7, Shape{2, 3});
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{7, 8, 9, 10, 11, 12}));
  v.data<float>()[0] = -1;  // writes through to the parent
  EXPECT_EQ(t.data<float>()[7], -1);
  // A view of a view adds the offsets.
  Tensor vv = v.view(4, Shape{2});
  EXPECT_EQ(vv.to_vector<float>(), (std::vector<float>{11, 12}));
  EXPECT_EQ(vv.raw(), static_cast<void*>(t.data<float>() + 11));
  // zero() on a view clears only the view.
  vv.zero();
  EXPECT_EQ(t.data<float>()[10], 10);
  EXPECT_EQ(t.data<float>()[11], 0);
  EXPECT_EQ(t.data<float>()[12], 0);
  EXPECT_EQ(t.data<float>()[13], 13);
}

TEST(Tensor, SlicesAlongTheFirstDimension) {
  Tensor t = iota(Shape{3, 2, 2});
  Tensor s = t[2];
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{8, 9, 10, 11}));
  EXPECT_EQ(s[1].to_vector<float>(), (std::vector<float>{10, 11}));
  EXPECT_TRUE(contains(error_message([&] { t[3]; }), "index 3 outside dimension 0 of (3, 2, 2)"));
}

TEST(Tensor, ReshapeSharesStorageAndKeepsTheCount) {
  Tensor t = iota(Shape{2, 6});
  Tensor r = t.reshape(Shape{3, 4});
  EXPECT_EQ(r.shape(), (Shape{3, 4}));
  EXPECT_EQ(r.raw(), t.raw());
  EXPECT_TRUE(contains(error_message([&] {
                         t.reshape(Shape{5, 2});
                       }),
                       "cannot reshape (2, 6) to (5, 2)"));
}

TEST(Tensor, OutOfRangeViewsAndWrongTypesAreErrors) {
  Tensor t = iota(Shape{10});
  EXPECT_TRUE(contains(error_message([&] { t.view(8, Shape{3}); }),
                       "view [8, 11) is outside a tensor of 10 elements"));
  EXPECT_TRUE(contains(error_message([&] { t.view(-1, Shape{2}); }), "outside"));
  EXPECT_TRUE(
      contains(error_message([&] { t.data<double>(); }), "tensor holds f32, accessed as f64"));
  EXPECT_TRUE(contains(error_message([&] { Tensor().view(0, Shape{1}); }), "undefined tensor"));
}

TEST(Tensor, CopiesAreDeepAndChecked) {
  Tensor t = iota(Shape{2, 3});
  Tensor c = t.to(cpu_device());
  EXPECT_NE(c.raw(), t.raw());
  c.data<float>()[0] = 42;
  EXPECT_EQ(t.data<float>()[0], 0);
  Tensor d = Tensor::zeros(Shape{6}, DType::f32, cpu_device());
  d.copy_from(t);  // same count, other shape: allowed
  EXPECT_EQ(d.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  Tensor wrong = Tensor::zeros(Shape{5}, DType::f32, cpu_device());
  EXPECT_TRUE(
      contains(error_message([&] { wrong.copy_from(t); }), "copy of f32 (2, 3) into f32 (5)"));
  Tensor other = Tensor::zeros(Shape{6}, DType::f64, cpu_device());
  EXPECT_TRUE(contains(error_message([&] { other.copy_from(t); }), "copy of f32"));
}

TEST(Tensor, StorageIsAligned) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty(Shape{n}, DType::u8, cpu_device());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u) << n;
  }
}

}  // namespace
}  // namespace kiln::test
