// Windows of a tokenized corpus held in host memory (see text_dataset.h).
#include "core/data/text_dataset.h"

#include "core/data/token_shard.h"
#include "core/error.h"

namespace kiln {

namespace {

class TextDataset final : public Dataset {
 public:
  TextDataset(std::vector<uint16_t> tokens, int64_t vocab, int64_t seq_len, std::string what)
      : tokens_(std::move(tokens)), vocab_(vocab), seq_len_(seq_len), what_(std::move(what)) {}

  int64_t size() const override { return (static_cast<int64_t>(tokens_.size()) - 1) / seq_len_; }
  Shape sample_shape() const override { return Shape{seq_len_}; }
  DType input_dtype() const override { return DType::i32; }
  Shape label_shape() const override { return Shape{seq_len_}; }
  int64_t num_classes() const override { return vocab_; }
  std::string describe() const override {
    return fmt::format("{} ({} tokens, {} windows of {}+1)", what_, tokens_.size(), size(),
                       seq_len_);
  }

  void gather(const int64_t* idx, int64_t n, Tensor& x, Tensor& y) const override {
    KILN_CHECK(x.numel() == n * seq_len_ && y.numel() == n * seq_len_ && x.dtype() == DType::i32 &&
                   y.dtype() == DType::i32,
               "gather: x {} / y {} for {} windows of {} i32 tokens", x.shape().str(),
               y.shape().str(), n, seq_len_);
    int32_t* xp = x.data<int32_t>();
    int32_t* yp = y.data<int32_t>();
    const int64_t count = size();
    for (int64_t i = 0; i < n; ++i) {
      KILN_CHECK(idx[i] >= 0 && idx[i] < count, "window index {} outside [0, {})", idx[i], count);
      const uint16_t* src = tokens_.data() + idx[i] * seq_len_;
      int32_t* xr = xp + i * seq_len_;
      int32_t* yr = yp + i * seq_len_;
      for (int64_t t = 0; t < seq_len_; ++t) {
        xr[t] = src[t];
        yr[t] = src[t + 1];
      }
    }
  }

 private:
  std::vector<uint16_t> tokens_;
  int64_t vocab_, seq_len_;
  std::string what_;
};

}  // namespace

std::unique_ptr<Dataset> open_text_dataset(const std::string& dir, const std::string& split,
                                           int64_t seq_len) {
  KILN_CHECK(seq_len >= 1, "text windows need seq_len >= 1, got {}", seq_len);
  const std::vector<std::string> paths = token_shard_paths(dir, split);
  KILN_CHECK(!paths.empty(),
             "data.path = '{}' holds no {}-*.tok token shards. Make them with "
             "`kiln data prepare-text FILE --out {}` (for the King James Bible: "
             "scripts/prepare_kjv.sh)",
             dir, split, dir);
  std::vector<uint16_t> tokens;
  int64_t vocab = 0;
  for (const std::string& p : paths) {
    TokenShard s = read_token_shard(p);
    KILN_CHECK(vocab == 0 || s.vocab == vocab,
               "token shard {} has a vocabulary of {} but the "
               "shards before it have {}",
               p, s.vocab, vocab);
    vocab = s.vocab;
    tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
  }
  KILN_CHECK(static_cast<int64_t>(tokens.size()) >= seq_len + 1,
             "the {} split in {} holds {} "
             "tokens, fewer than one window of model.seq_len + 1 = {}",
             split, dir, tokens.size(), seq_len + 1);
  return std::make_unique<TextDataset>(std::move(tokens), vocab, seq_len,
                                       fmt::format("text/{} of {}", split, dir));
}

}  // namespace kiln
