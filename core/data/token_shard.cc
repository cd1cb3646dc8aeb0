// Token shard files: writing, checked reading, and turning a text file into the two splits.
#include "core/data/token_shard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"

namespace kiln {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'T', 'O', 'K', 'S'};
constexpr uint32_t kDTypeU8 = 1, kDTypeU16 = 2;

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += (p[i] >= 32 && p[i] < 127) ? static_cast<char>(p[i]) : '?';
  }
  return s;
}

}  // namespace

void write_token_shard(const std::string& path, const std::vector<uint16_t>& tokens,
                       int64_t vocab) {
  KILN_CHECK(vocab >= 1 && vocab <= 65536, "token shard {}: vocabulary {} is outside [1, 65536]",
             path, vocab);
  const uint32_t dtype = vocab <= 256 ? kDTypeU8 : kDTypeU16;
  uint8_t header[kTokenShardHeaderBytes] = {};
  std::memcpy(header, kMagic, 8);
  put_u32(header + 8, kTokenShardVersion);
  put_u32(header + 12, dtype);
  put_u64(header + 16, tokens.size());
  put_u32(header + 24, static_cast<uint32_t>(vocab));
  std::vector<uint8_t> body;
  if (dtype == kDTypeU8) {
    body.assign(tokens.begin(), tokens.end());
  } else {
    body.resize(tokens.size() * 2);
    for (size_t i = 0; i < tokens.size(); ++i) {
      body[2 * i] = static_cast<uint8_t>(tokens[i]);
      body[2 * i + 1] = static_cast<uint8_t>(tokens[i] >> 8);
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  KILN_CHECK(out.good(), "cannot create token shard {}: {}", path, errno_string());
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  out.close();
  KILN_CHECK(!out.fail(), "writing token shard {} failed: {} (is the disk full?)", path,
             errno_string());
}

TokenShard read_token_shard(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  KILN_CHECK(in.good(), "cannot open token shard {}: {}", path, errno_string());
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  KILN_CHECK(size >= kTokenShardHeaderBytes,
             "token shard {} is truncated: {} bytes, shorter "
             "than the {}-byte header; re-create it with `kiln data prepare-text`",
             path, size, kTokenShardHeaderBytes);
  uint8_t header[kTokenShardHeaderBytes];
  in.read(reinterpret_cast<char*>(header), sizeof header);
  KILN_CHECK(std::memcmp(header, kMagic, 8) == 0,
             "{} is not a Kiln token shard: it starts with "
             "'{}', expected the magic 'KILNTOKS'; make shards with `kiln data prepare-text`",
             path, printable(header, 8));
  const uint32_t version = get_u32(header + 8);
  KILN_CHECK(version == kTokenShardVersion,
             "token shard {} has format version {}, but this "
             "Kiln reads version {}; re-create it with this Kiln's `kiln data prepare-text`",
             path, version, kTokenShardVersion);
  const uint32_t dtype = get_u32(header + 12);
  KILN_CHECK(dtype == kDTypeU8 || dtype == kDTypeU16,
             "token shard {} has token dtype code {}, "
             "expected 1 (u8) or 2 (u16)",
             path, dtype);
  const uint64_t count = get_u64(header + 16);
  const uint32_t vocab = get_u32(header + 24);
  const uint64_t width = dtype == kDTypeU8 ? 1 : 2;
  const uint64_t body = size - kTokenShardHeaderBytes;
  KILN_CHECK(count <= body / width && body == count * width,
             "token shard {} is {}: its header says {} tokens ({} bytes of {}) but {} bytes "
             "follow the header; re-create it with `kiln data prepare-text`",
             path, body < count * width ? "truncated" : "longer than its header says", count,
             count * width, width == 1 ? "u8" : "u16", body);
  KILN_CHECK(vocab >= 1 && (width == 2 || vocab <= 256),
             "token shard {}: vocabulary {} does not "
             "fit its {} tokens",
             path, vocab, width == 1 ? "u8" : "u16");

  TokenShard s;
  s.vocab = vocab;
  std::vector<uint8_t> raw(static_cast<size_t>(body));
  in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(body));
  KILN_CHECK(in.good() || body == 0, "reading token shard {} failed: {}", path, errno_string());
  s.tokens.resize(static_cast<size_t>(count));
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    s.tokens[i] = width == 1 ? raw[i] : static_cast<uint16_t>(raw[2 * i] | raw[2 * i + 1] << 8);
    KILN_CHECK(s.tokens[i] < vocab,
               "token shard {}: token {} at position {} is outside its "
               "vocabulary of {}",
               path, s.tokens[i], i, vocab);
  }
  return s;
}

std::vector<std::string> token_shard_paths(const std::string& dir, const std::string& split) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(split + "-", 0) == 0 && name.size() > 4 &&
        name.compare(name.size() - 4, 4, ".tok") == 0) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

PrepareTextSummary prepare_text_shards(const std::string& input, const std::string& out_dir,
                                       const PrepareTextOptions& o) {
  KILN_CHECK(o.val_fraction > 0 && o.val_fraction <= 0.5, "--val-fraction {} is outside (0, 0.5]",
             o.val_fraction);
  KILN_CHECK(o.block_bytes >= 1 && o.shard_tokens >= 1, "block and shard sizes must be positive");
  std::ifstream in(input, std::ios::binary);
  KILN_CHECK(in.good(), "cannot read text file {}: {}", input, errno_string());
  std::vector<uint8_t> text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int64_t n = static_cast<int64_t>(text.size());
  const double f = o.val_fraction;
  // Blocks small enough that validation gets at least two of them.
  const int64_t block = std::max<int64_t>(
      1, std::min<int64_t>(o.block_bytes, static_cast<int64_t>(std::floor(n * f / 2))));
  KILN_CHECK(n * f >= 2,
             "{} holds {} bytes: too little text to hold out a share of {} for "
             "validation",
             input, n, f);

  std::vector<uint16_t> train, val;
  train.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k * block < n; ++k) {
    const bool to_val = std::floor((k + 1) * f) > std::floor(k * f);
    std::vector<uint16_t>& dst = to_val ? val : train;
    const int64_t end = std::min(n, (k + 1) * block);
    dst.insert(dst.end(), text.begin() + k * block, text.begin() + end);
  }

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  KILN_CHECK(!ec, "cannot create {}: {}", out_dir, ec.message());
  for (const char* split : {"train", "val"}) {
    for (const std::string& old : token_shard_paths(out_dir, split)) {
      std::filesystem::remove(old, ec);
    }
  }
  PrepareTextSummary summary;
  summary.train_tokens = static_cast<int64_t>(train.size());
  summary.val_tokens = static_cast<int64_t>(val.size());
  summary.block_bytes = block;
  for (auto [split, tokens] :
       {std::pair<const char*, const std::vector<uint16_t>*>{"train", &train}, {"val", &val}}) {
    const int64_t total = static_cast<int64_t>(tokens->size());
    for (int64_t s = 0, i = 0; i < total || s == 0; ++s, i += o.shard_tokens) {
      const int64_t end = std::min(total, i + o.shard_tokens);
      std::vector<uint16_t> part(tokens->begin() + i, tokens->begin() + end);
      const std::string path = fmt::format("{}/{}-{:05d}.tok", out_dir, split, s);
      write_token_shard(path, part, 256);
      summary.files.push_back(path);
    }
  }
  return summary;
}

}  // namespace kiln
