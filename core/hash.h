// Fast non-cryptographic hashing (xxHash3, 64-bit) for config fingerprints and checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

uint64_t xxh3_64(const void* data, size_t bytes, uint64_t seed = 0);
inline uint64_t xxh3_64(std::string_view s) { return xxh3_64(s.data(), s.size()); }
std::string hash_hex(uint64_t h);  // 16 lower-case hex digits

// Streaming form, for files too large to hold at once.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void update(const void* data, size_t bytes);
  uint64_t digest() const;

 private:
  void* state_;
};

}  // namespace kiln
