// safetensors: the byte layout the format defines, round trips, and clear errors on truncated
// or malformed files.
#include "core/checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/checkpoint/durable_file.h"
#include "core/error.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

std::string slurp(const std::string& path) { return read_file(path); }

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects `fn` to throw kiln::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<const char*> parts) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const char* p : parts) {
      EXPECT_NE(e.message().find(p), std::string::npos) << "'" << p << "' not in: " << e.message();
    }
  }
}

struct Sample {
  std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 1e-20f, -7.0f};  // (2, 3)
  std::vector<int32_t> ids = {7, -1, 1 << 30};
  std::vector<uint8_t> bytes = {1, 2, 3, 4, 5};
  std::vector<SafeTensor> tensors() const {
    return {{"layers.0.weight", DType::f32, Shape{2, 3}, w.data()},
            {"ids", DType::i32, Shape{3}, ids.data()},
            {"raw", DType::u8, Shape{5}, bytes.data()}};
  }
};

TEST(SafeTensors, ByteLayoutFollowsTheFormat) {
  test::TempDir dir;
  const std::string path = dir.path() + "/a.safetensors";
  Sample s;
  write_safetensors(path, s.tensors(), {{"step", "12"}});
  const std::string b = slurp(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
  ASSERT_LE(8 + n, b.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  const nlohmann::json h = nlohmann::json::parse(b.substr(8, n));
  EXPECT_EQ(h["__metadata__"]["step"], "12");
  EXPECT_EQ(h["layers.0.weight"]["dtype"], "F32");
  EXPECT_EQ(h["layers.0.weight"]["shape"], nlohmann::json::array({2, 3}));
  EXPECT_EQ(h["layers.0.weight"]["data_offsets"], nlohmann::json::array({0, 24}));
  EXPECT_EQ(h["ids"]["dtype"], "I32");
  EXPECT_EQ(h["ids"]["data_offsets"], nlohmann::json::array({24, 36}));
  EXPECT_EQ(h["raw"]["data_offsets"], nlohmann::json::array({36, 41}));
  EXPECT_EQ(b.size(), 8 + n + 41);
  // Raw little-endian values right after the header.
  float w1;
  std::memcpy(&w1, b.data() + 8 + n + 4, 4);
  EXPECT_EQ(w1, -2.0f);
  EXPECT_EQ(static_cast<uint8_t>(b.back()), 5);
}

TEST(SafeTensors, RoundTripIsExact) {
  test::TempDir dir;
  const std::string path = dir.path() + "/a.safetensors";
  Sample s;
  write_safetensors(path, s.tensors(), {{"model", "mlp"}, {"k", "v"}});
  const SafeTensorFile f = read_safetensors(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"layers.0.weight", "ids", "raw"}));
  EXPECT_EQ(f.dtype("ids"), DType::i32);
  EXPECT_EQ(f.shape("layers.0.weight"), (Shape{2, 3}));
  EXPECT_EQ(std::memcmp(f.data("layers.0.weight"), s.w.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.data("ids"), s.ids.data(), 12), 0);
  EXPECT_EQ(std::memcmp(f.data("raw"), s.bytes.data(), 5), 0);
  EXPECT_EQ(f.meta("model"), "mlp");
  EXPECT_EQ(f.metadata().size(), 2u);
  expect_error([&] { f.data("nope"); }, {"a.safetensors", "nope", "layers.0.weight"});
  expect_error([&] { f.meta("step"); }, {"a.safetensors", "step"});
}

TEST(SafeTensors, ImageWritesTheSameTensorsDirectly) {
  test::TempDir dir;
  const std::string path = dir.path() + "/img.safetensors";
  Sample s;
  std::vector<SafeTensor> specs = s.tensors();
  SafeTensorsImage image(specs, {{"k", "v"}});
  for (size_t i = 0; i < specs.size(); ++i) {
    std::memcpy(image.data(i), specs[i].data,
                static_cast<size_t>(specs[i].shape.numel()) * dtype_size(specs[i].dtype));
  }
  const FileDigest d = image.write(path);
  const FileDigest on_disk = digest_file(path);
  EXPECT_EQ(d.size, image.size());
  EXPECT_EQ(on_disk.size, image.size());  // the last direct-I/O block was cut back
  EXPECT_EQ(on_disk.xxh3, d.xxh3);
  const std::string b = slurp(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
  EXPECT_EQ((8 + n) % kFileAlign, 0u) << "the data section starts block-aligned";
  const SafeTensorFile f = read_safetensors(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"layers.0.weight", "ids", "raw"}));
  EXPECT_EQ(std::memcmp(f.data("layers.0.weight"), s.w.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.data("ids"), s.ids.data(), 12), 0);
  EXPECT_EQ(std::memcmp(f.data("raw"), s.bytes.data(), 5), 0);
  EXPECT_EQ(f.meta("k"), "v");
}

TEST(SafeTensors, EmptyAndScalarTensors) {
  test::TempDir dir;
  const std::string path = dir.path() + "/e.safetensors";
  float one = 4.0f;
  write_safetensors(
      path, {{"empty", DType::f32, Shape{0, 3}, nullptr}, {"scalar", DType::f32, Shape{}, &one}},
      {});
  const SafeTensorFile f = read_safetensors(path);
  EXPECT_EQ(f.shape("empty").numel(), 0);
  EXPECT_EQ(*static_cast<const float*>(f.data("scalar")), 4.0f);
}

TEST(SafeTensors, TruncatedFileNamesFileAndSizes) {
  test::TempDir dir;
  const std::string path = dir.path() + "/t.safetensors";
  Sample s;
  write_safetensors(path, s.tensors(), {});
  const std::string b = slurp(path);
  spit(path, b.substr(0, b.size() - 3));
  expect_error([&] { read_safetensors(path); }, {"t.safetensors", "truncated", "raw"});
  spit(path, b.substr(0, 5));
  expect_error([&] { read_safetensors(path); }, {"t.safetensors", "truncated", "8-byte"});
  spit(path, b.substr(0, 20));
  expect_error([&] { read_safetensors(path); }, {"t.safetensors", "truncated", "JSON"});
}

// Reading the header alone gives the same entries and metadata as a whole read, and read_bytes
// fetches any byte range of a tensor from the file (what a rank restoring its slice of the
// optimizer state reads); the checks against the file's size still apply.
TEST(SafeTensors, HeaderOnlyReadFetchesRangesFromTheFile) {
  test::TempDir dir;
  const std::string path = dir.path() + "/p.safetensors";
  Sample s;
  write_safetensors(path, s.tensors(), {{"k", "v"}});
  const SafeTensorFile whole = read_safetensors(path);
  const SafeTensorFile head = read_safetensors_header(path);
  EXPECT_EQ(head.names(), whole.names());
  EXPECT_EQ(head.shape("layers.0.weight"), (Shape{2, 3}));
  EXPECT_EQ(head.meta("k"), "v");
  float w[3] = {};
  head.read_bytes("layers.0.weight", 2 * sizeof(float), sizeof(w), w);  // elements 2..4
  EXPECT_EQ(w[0], 3.25f);
  EXPECT_EQ(w[1], 0.0f);
  EXPECT_EQ(w[2], 1e-20f);
  uint8_t raw[2] = {};
  head.read_bytes("raw", 3, 2, raw);
  EXPECT_EQ(raw[0], 4);
  EXPECT_EQ(raw[1], 5);
  int32_t id = 0;
  whole.read_bytes("ids", 8, 4, &id);  // from memory
  EXPECT_EQ(id, 1 << 30);
  expect_error([&] { head.data("raw"); }, {"p.safetensors", "raw", "header"});
  expect_error([&] { head.read_bytes("raw", 4, 2, raw); }, {"p.safetensors", "[4, 6)", "raw"});

  const std::string b = slurp(path);
  spit(path, b.substr(0, b.size() - 3));
  expect_error([&] { read_safetensors_header(path); }, {"p.safetensors", "truncated", "raw"});
  spit(path, b.substr(0, 20));
  expect_error([&] { read_safetensors_header(path); }, {"p.safetensors", "truncated", "JSON"});
  spit(path, b.substr(0, 5));
  expect_error([&] { read_safetensors_header(path); }, {"p.safetensors", "truncated", "8-byte"});
}

TEST(SafeTensors, BadHeadersAreRejected) {
  test::TempDir dir;
  const std::string path = dir.path() + "/h.safetensors";
  auto with_header = [&](const std::string& json, size_t data_bytes) {
    std::string b(8, '\0');
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
    spit(path, b + json + std::string(data_bytes, '\0'));
  };
  with_header("{not json", 0);
  expect_error([&] { read_safetensors(path); }, {"h.safetensors", "not valid JSON"});
  with_header(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12);
  expect_error([&] { read_safetensors(path); }, {"h.safetensors", "'a'", "needs 16 bytes"});
  with_header(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", 4);
  expect_error([&] { read_safetensors(path); }, {"h.safetensors", "Q7"});
  with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8);
  expect_error([&] { read_safetensors(path); }, {"h.safetensors", "trailing"});
  with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
              8);
  expect_error([&] { read_safetensors(path); }, {"h.safetensors", "back to back"});
  spit(path, std::string("\xff\xff\xff\xff\xff\xff\x00\x00", 8) + "{}");
  expect_error([&] { read_safetensors(path); }, {"h.safetensors", "header length"});
}

}  // namespace
}  // namespace kiln
