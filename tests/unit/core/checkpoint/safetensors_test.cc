// safetensors: a round trip keeps names, dtypes, shapes, bytes and metadata; the layout on disk
// is the documented one (checked byte by byte); damaged files are refused with the file name.
#include "core/checkpoint/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "unit/test_util.h"

namespace kiln {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(SafeTensors, RoundTripKeepsEverything) {
  test::TempDir dir;
  const std::string path = dir.path() + "/m.safetensors";
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f};
  std::vector<int32_t> b = {7, -9, 123456};
  std::vector<double> c = {3.141592653589793};
  write_safetensors(path,
                    {{"wte", DType::f32, Shape{2, 3}, a.data()},
                     {"h.0.ids", DType::i32, Shape{3}, b.data()},
                     {"scalar", DType::f64, Shape{}, c.data()}},
                    {{"format", "pt"}, {"step", "12"}});
  SafeTensorFile f = read_safetensors(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"wte", "h.0.ids", "scalar"}));
  EXPECT_EQ(f.shape("wte"), (Shape{2, 3}));
  EXPECT_EQ(f.dtype("h.0.ids"), DType::i32);
  EXPECT_EQ(f.shape("scalar").ndim(), 0);
  EXPECT_EQ(std::memcmp(f.data("wte"), a.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(f.data("h.0.ids"), b.data(), b.size() * 4), 0);
  EXPECT_EQ(*static_cast<const double*>(f.data("scalar")), c[0]);
  EXPECT_EQ(f.metadata().at("step"), "12");
  EXPECT_THROW(f.data("missing"), Error);
}

TEST(SafeTensors, LayoutIsLengthJsonPaddedThenData) {
  test::TempDir dir;
  const std::string path = dir.path() + "/x.safetensors";
  std::vector<float> a = {1.0f, 2.0f};
  write_safetensors(path, {{"a", DType::f32, Shape{2}, a.data()}}, {});
  const std::string bytes = read_all(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 8);
  const std::string header = bytes.substr(8, n);
  const std::string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  EXPECT_EQ(header.substr(0, json.size()), json);
  EXPECT_EQ(header.find_first_not_of(' ', json.size()), std::string::npos);  // padding only
  float back[2];
  std::memcpy(back, bytes.data() + 8 + n, 8);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], 2.0f);
}

TEST(SafeTensors, TruncatedFileIsRefusedWithItsName) {
  test::TempDir dir;
  const std::string path = dir.path() + "/t.safetensors";
  std::vector<float> a(100, 1.0f);
  write_safetensors(path, {{"w", DType::f32, Shape{10, 10}, a.data()}}, {});
  std::string bytes = read_all(path);
  write_all(path, bytes.substr(0, bytes.size() - 4));
  try {
    read_safetensors(path);
    FAIL() << "a truncated file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  write_all(path, bytes.substr(0, 20));  // cut inside the header
  EXPECT_THROW(read_safetensors(path), Error);
}

TEST(SafeTensors, BadHeaderIsRefused) {
  test::TempDir dir;
  const std::string path = dir.path() + "/b.safetensors";
  std::string header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}";
  std::string len(8, '\0');
  len[0] = static_cast<char>(header.size());
  write_all(path, len + header + std::string(12, '\0'));
  EXPECT_THROW(read_safetensors(path), Error);  // 3 floats need 12 bytes, not 8
  header = "{not json";
  len[0] = static_cast<char>(header.size());
  write_all(path, len + header);
  EXPECT_THROW(read_safetensors(path), Error);
  header = "{\"w\": {\"dtype\": \"Q7\", \"shape\": [1], \"data_offsets\": [0, 1]}}";
  len[0] = static_cast<char>(header.size());
  write_all(path, len + header + "x");
  EXPECT_THROW(read_safetensors(path), Error);
}

}  // namespace
}  // namespace kiln
