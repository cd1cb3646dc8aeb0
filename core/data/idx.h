// Reader for IDX files (the MNIST family's format), gzip-compressed or plain, through zlib.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // unsigned bytes (the only element type Fashion-MNIST uses)
};

// Throws kiln::Error naming the file when it is missing, truncated or not u8 IDX.
IdxArray read_idx(const std::string& path);

}  // namespace kiln
