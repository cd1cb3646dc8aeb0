// Fashion-MNIST from the Debian package dataset-fashion-mnist: 60,000 training and 10,000 test
// images of 28x28 grey levels in 10 classes, normalised to zero mean and unit variance.
#include <sys/stat.h>

#include "core/data/dataset.h"
#include "core/data/idx.h"
#include "core/error.h"

namespace kiln {

namespace {

constexpr float kMean = 0.2860f;  // of the training images, in [0, 1] units
constexpr float kStd = 0.3530f;

class FashionMnist final : public Dataset {
 public:
  FashionMnist(const std::string& images, const std::string& labels, std::string split)
      : split_(std::move(split)) {
    IdxArray img = read_idx(images);
    IdxArray lab = read_idx(labels);
    KILN_CHECK(img.dims.size() == 3 && lab.dims.size() == 1 && img.dims[0] == lab.dims[0],
               "{} and {} disagree: {} images vs {} labels", images, labels, img.dims[0],
               lab.dims.empty() ? 0 : lab.dims[0]);
    n_ = img.dims[0];
    h_ = img.dims[1];
    w_ = img.dims[2];
    pixels_ = std::move(img.data);
    labels_ = std::move(lab.data);
    for (uint8_t l : labels_) KILN_CHECK(l < 10, "{}: label {} is not a class in [0, 10)", labels, l);
    // Lookup table from a byte to its normalised value: the gather loop is a table read.
    for (int i = 0; i < 256; ++i) lut_[i] = (static_cast<float>(i) / 255.0f - kMean) / kStd;
  }

  int64_t size() const override { return n_; }
  Shape sample_shape() const override { return Shape{1, h_, w_}; }
  int64_t num_classes() const override { return 10; }
  std::string describe() const override {
    return fmt::format("fashion_mnist/{} ({} images of {}x{})", split_, n_, h_, w_);
  }

  void gather(const int64_t* idx, int64_t n, Tensor& x, Tensor& y) const override {
    KILN_CHECK(x.numel() == n * h_ * w_ && y.numel() == n, "gather: x {} / y {} for {} samples",
               x.shape().str(), y.shape().str(), n);
    float* xp = x.data<float>();
    int32_t* yp = y.data<int32_t>();
    const int64_t per = h_ * w_;
    for (int64_t i = 0; i < n; ++i) {
      KILN_CHECK(idx[i] >= 0 && idx[i] < n_, "sample index {} outside [0, {})", idx[i], n_);
      const uint8_t* src = pixels_.data() + idx[i] * per;
      float* dst = xp + i * per;
      for (int64_t j = 0; j < per; ++j) dst[j] = lut_[src[j]];
      yp[i] = labels_[idx[i]];
    }
  }

 private:
  std::string split_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
  std::vector<uint8_t> pixels_, labels_;
  float lut_[256];
};

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string find_file(const std::string& dir, const std::string& stem, const std::string& key) {
  for (const char* suffix : {".gz", ""}) {
    std::string p = dir + "/" + stem + suffix;
    if (exists(p)) return p;
  }
  KILN_FAIL("Fashion-MNIST file {}/{}.gz is missing ({} = '{}'). Install the Debian package "
            "dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist, or run "
            "scripts/setup.sh), or point {} at a folder holding the four IDX files",
            dir, stem, key, dir, key);
}

}  // namespace

std::unique_ptr<Dataset> open_fashion_mnist(const std::string& dir, bool train) {
  const std::string key = "data.path";
  const std::string prefix = train ? "train" : "t10k";
  std::string images = find_file(dir, prefix + "-images-idx3-ubyte", key);
  std::string labels = find_file(dir, prefix + "-labels-idx1-ubyte", key);
  return std::make_unique<FashionMnist>(images, labels, train ? "train" : "test");
}

}  // namespace kiln
