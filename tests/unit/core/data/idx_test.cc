// The IDX reader on small files written here with zlib: gzip and plain files read back exactly;
// truncated files, a bad magic and unsupported element types are errors naming the file.
#include "core/data/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>

#include "test_util.h"

namespace kiln::test {
namespace {

// An IDX file's bytes: magic (0, 0, type, ndims), big-endian u32 sizes, then `data`.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                      uint8_t type = 0x08) {
  std::string b = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  b.append(data.begin(), data.end());
  return b;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

void write_plain(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + 3);
  return v;
}

TEST(IdxReader, ReadsGzipAndPlainFiles) {
  TempDir dir;
  const std::vector<uint8_t> data = counting(3 * 4 * 5);
  write_gz(dir.path() + "/a.gz", idx_bytes({3, 4, 5}, data));
  IdxArray a = read_idx(dir.path() + "/a.gz");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(a.data, data);

  write_plain(dir.path() + "/labels", idx_bytes({6}, {0, 1, 2, 9, 8, 7}));
  IdxArray b = read_idx(dir.path() + "/labels");
  EXPECT_EQ(b.dims, (std::vector<int64_t>{6}));
  EXPECT_EQ(b.data, (std::vector<uint8_t>{0, 1, 2, 9, 8, 7}));
}

TEST(IdxReader, DataShorterThanTheHeaderSaysNamesTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/short.gz";
  write_gz(path, idx_bytes({10, 10}, counting(99)));  // one byte missing
  std::string m = error_message([&] { read_idx(path); });
  EXPECT_TRUE(contains(m, path));
  EXPECT_TRUE(contains(m, "truncated or corrupt while reading the data (99 of 100 bytes read"));
}

TEST(IdxReader, CutGzipStreamNamesTheFile) {
  TempDir dir;
  const std::string whole = dir.path() + "/whole.gz", cut = dir.path() + "/cut.gz";
  write_gz(whole, idx_bytes({50, 40}, counting(2000)));
  const std::string bytes = read_all(whole);
  write_plain(cut, bytes.substr(0, bytes.size() / 2));
  std::string m = error_message([&] { read_idx(cut); });
  EXPECT_TRUE(contains(m, cut));
  EXPECT_TRUE(contains(m, "truncated or corrupt"));
}

TEST(IdxReader, TruncatedHeaderNamesTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/header.gz";
  write_gz(path, idx_bytes({10, 10}, {}).substr(0, 6));
  std::string m = error_message([&] { read_idx(path); });
  EXPECT_TRUE(contains(m, path));
  EXPECT_TRUE(contains(m, "while reading the header"));
}

TEST(IdxReader, BadMagicNamesTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/magic.gz";
  std::string bytes = idx_bytes({4}, {1, 2, 3, 4});
  bytes[0] = 0x12;
  bytes[1] = 0x34;
  write_gz(path, bytes);
  std::string m = error_message([&] { read_idx(path); });
  EXPECT_TRUE(contains(m, path + " is not an IDX file (magic 12340801)"));
}

TEST(IdxReader, UnsupportedElementTypeNamesTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/float.gz";
  write_gz(path, idx_bytes({1}, {0, 0, 0, 0}, 0x0d));  // 0x0d: 32-bit floats
  std::string m = error_message([&] { read_idx(path); });
  EXPECT_TRUE(contains(m, path + ": IDX element type 0x0d is not supported"));
}

TEST(IdxReader, MissingFileNamesTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/absent.gz";
  std::string m = error_message([&] { read_idx(path); });
  EXPECT_TRUE(contains(m, "cannot open " + path));
}

}  // namespace
}  // namespace kiln::test
