// Opens the datasets a config names.
#include "core/data/dataset.h"
#include "core/data/text_dataset.h"
#include "core/error.h"

namespace kiln {

std::unique_ptr<Dataset> open_fashion_mnist(const std::string& dir, bool train);

DatasetPair open_datasets(const Config& cfg) {
  DatasetPair out;
  if (cfg.data.name == "fashion_mnist") {
    out.train = open_fashion_mnist(cfg.data.path, true);
    out.eval = open_fashion_mnist(cfg.data.path, false);
    return out;
  }
  if (cfg.data.name == "text") {
    out.train = open_text_dataset(cfg.data.path, "train", cfg.model.seq_len);
    out.eval = open_text_dataset(cfg.data.path, "val", cfg.model.seq_len);
    return out;
  }
  KILN_FAIL("{} = '{}' is not available in this build", cfg.where("data.name"), cfg.data.name);
}

}  // namespace kiln
