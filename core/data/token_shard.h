// Token shards: the on-disk form of a tokenized corpus, and the byte-level tokenizer that makes
// them (token = byte value, vocabulary 256). A shard is a 32-byte little-endian header
//   magic "KILNTOKS" (8) | version u32 | dtype u32 (1 = u8, 2 = u16) | token count u64 |
//   vocabulary u32 | reserved u32 (0)
// followed by exactly `count` tokens. A corpus folder holds train-NNNNN.tok and val-NNNNN.tok;
// the shards of a split are read in name order and concatenated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

constexpr uint32_t kTokenShardVersion = 1;
constexpr int64_t kTokenShardHeaderBytes = 32;

// Writes one shard (u8 when vocab <= 256, else u16). Throws naming the file on failure.
void write_token_shard(const std::string& path, const std::vector<uint16_t>& tokens, int64_t vocab);

struct TokenShard {
  std::vector<uint16_t> tokens;
  int64_t vocab = 0;
};
// Reads and checks one shard: a wrong magic, an unknown version or dtype, a length that differs
// from the header's count, or a token outside the vocabulary is an error naming the file and
// what was expected.
TokenShard read_token_shard(const std::string& path);

// The shards of one split ("train" or "val") in `dir`, in order; empty when there are none.
std::vector<std::string> token_shard_paths(const std::string& dir, const std::string& split);

struct PrepareTextOptions {
  double val_fraction = 0.05;
  int64_t block_bytes = 64 << 10;  // the split's unit (see prepare_text_shards)
  int64_t shard_tokens = 1 << 28;  // tokens per shard at most
};
struct PrepareTextSummary {
  int64_t train_tokens = 0, val_tokens = 0, block_bytes = 0;
  std::vector<std::string> files;
};
// Byte-level tokenizes the file `input` and writes the shards of both splits into `out_dir`
// (created; earlier shards there are removed). The text is cut into blocks of block_bytes (made
// smaller for short texts, so that validation gets at least two blocks); block k goes to
// validation when floor((k + 1) f) > floor(k f) for f = val_fraction, i.e. evenly spread
// blocks holding a share f of the text, so validation samples the whole corpus.
PrepareTextSummary prepare_text_shards(const std::string& input, const std::string& out_dir,
                                       const PrepareTextOptions& options);

}  // namespace kiln
