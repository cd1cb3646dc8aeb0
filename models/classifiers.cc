// The MLP and the small CNN, built from model.* keys.
#include "core/config.h"
#include "models/model.h"

namespace kiln {

std::unique_ptr<Model> make_mlp(const Config& cfg, const ModelSpec& spec) {
  const ModelConfig& m = cfg.model;
  auto model = std::make_unique<SequentialClassifier>("mlp", spec);
  model->add(std::make_unique<Flatten>());
  int64_t in = spec.sample_shape.numel();
  uint32_t id = 0;
  for (int64_t width : m.hidden) {
    model->add(std::make_unique<Linear>(in, width));
    model->add(std::make_unique<ReLU>());
    if (m.dropout > 0) model->add(std::make_unique<Dropout>(static_cast<float>(m.dropout), id++));
    in = width;
  }
  model->add(std::make_unique<Linear>(in, spec.num_classes));
  return model;
}

// [conv k x k (same padding) -> ReLU -> 2x2 max-pool] per entry of model.channels, then
// flatten -> linear(fc) -> ReLU -> dropout -> linear(classes).
std::unique_ptr<Model> make_cnn(const Config& cfg, const ModelSpec& spec) {
  const ModelConfig& m = cfg.model;
  KILN_CHECK(spec.sample_shape.ndim() == 3, "model cnn needs image samples (C, H, W), the "
             "dataset gives {}", spec.sample_shape.str());
  auto model = std::make_unique<SequentialClassifier>("cnn", spec);
  int64_t c = spec.sample_shape[0], h = spec.sample_shape[1], w = spec.sample_shape[2];
  for (int64_t out : m.channels) {
    KILN_CHECK(h >= 2 && w >= 2, "{}: too many conv blocks for {}x{} images (each halves the "
               "size)", cfg.where("model.channels"), spec.sample_shape[1], spec.sample_shape[2]);
    model->add(std::make_unique<Conv2d>(c, out, m.kernel, 1, m.kernel / 2));
    model->add(std::make_unique<ReLU>());
    model->add(std::make_unique<MaxPool2d>(2, 2));
    c = out;
    h /= 2;
    w /= 2;
  }
  model->add(std::make_unique<Flatten>());
  model->add(std::make_unique<Linear>(c * h * w, m.fc));
  model->add(std::make_unique<ReLU>());
  if (m.dropout > 0) model->add(std::make_unique<Dropout>(static_cast<float>(m.dropout), 0));
  model->add(std::make_unique<Linear>(m.fc, spec.num_classes));
  return model;
}

}  // namespace kiln
