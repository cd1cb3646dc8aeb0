// Fashion-MNIST from the Debian package files: sizes, balanced classes, normalisation; and the
// error for a folder without the files, which names the package to install.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>

#include "core/config.h"
#include "core/data/dataset.h"
#include "test_util.h"

namespace kiln::test {
namespace {

const char* kDir = "/usr/share/datasets/fashion-mnist";

bool dataset_present() {
  struct stat st;
  return stat((std::string(kDir) + "/train-images-idx3-ubyte.gz").c_str(), &st) == 0;
}

Config fashion_config(const std::string& path) {
  Config cfg;
  cfg.data.name = "fashion_mnist";
  cfg.data.path = path;
  return cfg;
}

struct SplitStats {
  std::vector<int64_t> per_class = std::vector<int64_t>(10, 0);
  double mean = 0, stddev = 0;
};

// Reads every sample of a split in chunks: label counts and the pixel mean and deviation.
SplitStats split_stats(const Dataset& d) {
  SplitStats s;
  const int64_t chunk = 1000, per = d.sample_shape().numel();
  Tensor x = Tensor::empty(Shape{chunk, 1, 28, 28}, DType::f32, cpu_device());
  Tensor y = Tensor::empty(Shape{chunk}, DType::i32, cpu_device());
  std::vector<int64_t> idx(chunk);
  double sum = 0, sumsq = 0;
  for (int64_t start = 0; start < d.size(); start += chunk) {
    for (int64_t i = 0; i < chunk; ++i) idx[i] = start + i;
    d.gather(idx.data(), chunk, x, y);
    for (int64_t i = 0; i < chunk; ++i) {
      const int32_t label = y.data<int32_t>()[i];
      EXPECT_TRUE(label >= 0 && label < 10) << "sample " << start + i << " label " << label;
      if (label >= 0 && label < 10) ++s.per_class[label];
    }
    const float* p = x.data<float>();
    for (int64_t i = 0; i < chunk * per; ++i) {
      sum += p[i];
      sumsq += static_cast<double>(p[i]) * p[i];
    }
  }
  const double n = static_cast<double>(d.size() * per);
  s.mean = sum / n;
  s.stddev = std::sqrt(sumsq / n - s.mean * s.mean);
  return s;
}

// The package's files, read once for the tests that need them.
class FashionMnistFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (dataset_present()) data_ = new DatasetPair(open_datasets(fashion_config(kDir)));
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  void SetUp() override {
    if (!data_) GTEST_SKIP() << kDir << " is absent (package dataset-fashion-mnist)";
  }
  static DatasetPair* data_;
};
DatasetPair* FashionMnistFiles::data_ = nullptr;

TEST_F(FashionMnistFiles, HoldTheTwoSplits) {
  DatasetPair& data = *data_;
  ASSERT_EQ(data.train->size(), 60000);
  ASSERT_EQ(data.eval->size(), 10000);
  EXPECT_EQ(data.train->sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(data.train->num_classes(), 10);

  // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
  SplitStats train = split_stats(*data.train);
  SplitStats test = split_stats(*data.eval);
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train.per_class[c], 6000) << "class " << c;
    EXPECT_EQ(test.per_class[c], 1000) << "class " << c;
  }
  // Normalised with the training set's own mean and deviation.
  EXPECT_NEAR(train.mean, 0.0, 1e-3);
  EXPECT_NEAR(train.stddev, 1.0, 1e-3);
}

TEST_F(FashionMnistFiles, SameIndicesGiveSameSamples) {
  DatasetPair& data = *data_;
  Tensor a = Tensor::empty(Shape{2, 1, 28, 28}, DType::f32, cpu_device());
  Tensor b = Tensor::empty(Shape{2, 1, 28, 28}, DType::f32, cpu_device());
  Tensor ya = Tensor::empty(Shape{2}, DType::i32, cpu_device());
  Tensor yb = Tensor::empty(Shape{2}, DType::i32, cpu_device());
  const int64_t ab[2] = {59999, 7}, ba[2] = {7, 59999};
  data.train->gather(ab, 2, a, ya);
  data.train->gather(ba, 2, b, yb);
  EXPECT_TRUE(all_close(as_doubles(a[0]), as_doubles(b[1]), 0, 0));
  EXPECT_EQ(ya.data<int32_t>()[1], yb.data<int32_t>()[0]);
  const int64_t bad[1] = {60000};
  Tensor x1 = a.view(0, Shape{1, 1, 28, 28}), y1 = ya.view(0, Shape{1});
  EXPECT_TRUE(contains(error_message([&] { data.train->gather(bad, 1, x1, y1); }),
                       "sample index 60000 outside [0, 60000)"));
}

TEST(FashionMnist, MissingFilesNameThePackage) {
  TempDir empty;
  std::string m = error_message([&] { open_datasets(fashion_config(empty.path())); });
  EXPECT_TRUE(contains(m, empty.path() + "/train-images-idx3-ubyte.gz is missing"));
  EXPECT_TRUE(contains(m, "dataset-fashion-mnist"));
  EXPECT_TRUE(contains(m, "data.path"));
}

}  // namespace
}  // namespace kiln::test
