// Token shards and the text dataset: the split deals out evenly spread blocks, windows hold the
// right tokens, and shards with a wrong magic, version or length are refused by name.
#include "core/data/text_dataset.h"

#include <algorithm>
#include <fstream>

#include "core/data/sampler.h"
#include "core/data/token_shard.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

std::string make_text(const std::string& dir, int64_t n) {
  const std::string path = dir + "/in.txt";
  std::ofstream out(path, std::ios::binary);
  for (int64_t i = 0; i < n; ++i) out.put(static_cast<char>('a' + i % 26));
  return path;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(TokenShard, PrepareSplitsEvenlySpreadBlocks) {
  test::TempDir dir;
  const std::string text = make_text(dir.path(), 1000);
  PrepareTextOptions o;
  o.val_fraction = 0.1;
  o.block_bytes = 10;  // 100 blocks: blocks 9, 19, ..., 99 go to validation
  PrepareTextSummary s = prepare_text_shards(text, dir.path() + "/out", o);
  EXPECT_EQ(s.train_tokens, 900);
  EXPECT_EQ(s.val_tokens, 100);
  TokenShard val = read_token_shard(dir.path() + "/out/val-00000.tok");
  ASSERT_EQ(val.tokens.size(), 100u);
  EXPECT_EQ(val.vocab, 256);
  // The first validation block is bytes [90, 100) of the text.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(val.tokens[i], 'a' + (90 + i) % 26);
  TokenShard train = read_token_shard(dir.path() + "/out/train-00000.tok");
  EXPECT_EQ(train.tokens[90], 'a' + 100 % 26);  // block 10 follows block 8
}

TEST(TokenShard, ShortTextsGetSmallerBlocks) {
  test::TempDir dir;
  const std::string text = make_text(dir.path(), 400);
  PrepareTextOptions o;  // 64 KiB blocks would leave validation empty
  o.val_fraction = 0.05;
  PrepareTextSummary s = prepare_text_shards(text, dir.path() + "/out", o);
  EXPECT_EQ(s.block_bytes, 10);
  EXPECT_EQ(s.val_tokens, 20);
}

TEST(TextDataset, WindowsAreShiftedPairs) {
  test::TempDir dir;
  const std::string text = make_text(dir.path(), 2000);
  PrepareTextOptions o;
  o.val_fraction = 0.1;
  o.block_bytes = 100;
  prepare_text_shards(text, dir.path(), o);
  std::unique_ptr<Dataset> d = open_text_dataset(dir.path(), "train", 16);
  EXPECT_EQ(d->size(), (1800 - 1) / 16);
  EXPECT_EQ(d->input_dtype(), DType::i32);
  EXPECT_EQ(d->sample_shape(), (Shape{16}));
  EXPECT_EQ(d->label_shape(), (Shape{16}));
  EXPECT_EQ(d->num_classes(), 256);
  Tensor x = Tensor::empty(Shape{2, 16}, DType::i32, cpu_device());
  Tensor y = Tensor::empty(Shape{2, 16}, DType::i32, cpu_device());
  const int64_t idx[2] = {0, 3};  // window 3 starts at token 48
  d->gather(idx, 2, x, y);
  const int32_t* xp = x.data<int32_t>();
  const int32_t* yp = y.data<int32_t>();
  for (int t = 0; t < 16; ++t) {
    EXPECT_EQ(xp[t], 'a' + t % 26);
    EXPECT_EQ(yp[t], 'a' + (t + 1) % 26);
    EXPECT_EQ(xp[16 + t], 'a' + (48 + t) % 26);
    EXPECT_EQ(yp[16 + t], 'a' + (49 + t) % 26);
  }
  // The global order covers every window once per epoch.
  GlobalSampler sampler(d->size(), 7);
  std::vector<int64_t> order(static_cast<size_t>(d->size()));
  sampler.indices(0, d->size(), order.data());
  std::sort(order.begin(), order.end());
  for (int64_t i = 0; i < d->size(); ++i) EXPECT_EQ(order[i], i);
}

TEST(TextDataset, MissingShardsNameTheCommandThatMakesThem) {
  test::TempDir dir;
  try {
    open_text_dataset(dir.path(), "train", 8);
    FAIL() << "an empty folder was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prepare-text"), std::string::npos) << e.what();
  }
}

class DamagedShard : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/train-00000.tok";
    write_token_shard(path_, std::vector<uint16_t>(50, 'x'), 256);
    bytes_ = read_all(path_);
    ASSERT_EQ(bytes_.size(), 32u + 50u);
  }
  // The error raised for the damaged file, or "" when it was accepted.
  std::string error_of(const std::string& bytes) {
    write_all(path_, bytes);
    try {
      read_token_shard(path_);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
      return e.what();
    }
    return "";
  }
  test::TempDir dir_;
  std::string path_, bytes_;
};

TEST_F(DamagedShard, WrongMagic) {
  std::string b = bytes_;
  b[0] = 'X';
  EXPECT_NE(error_of(b).find("expected the magic 'KILNTOKS'"), std::string::npos);
}

TEST_F(DamagedShard, WrongVersion) {
  std::string b = bytes_;
  b[8] = 9;
  EXPECT_NE(error_of(b).find("version 9, but this Kiln reads version 1"), std::string::npos);
}

TEST_F(DamagedShard, TruncatedBody) {
  const std::string e = error_of(bytes_.substr(0, bytes_.size() - 7));
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("50 tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("43 bytes"), std::string::npos) << e;
}

TEST_F(DamagedShard, TruncatedHeader) {
  EXPECT_NE(error_of(bytes_.substr(0, 20)).find("shorter than the 32-byte header"),
            std::string::npos);
}

TEST_F(DamagedShard, TrailingBytes) {
  EXPECT_NE(error_of(bytes_ + "zz").find("longer than its header says"), std::string::npos);
}

TEST_F(DamagedShard, IntactShardIsRead) { EXPECT_EQ(error_of(bytes_), ""); }

}  // namespace
}  // namespace kiln
