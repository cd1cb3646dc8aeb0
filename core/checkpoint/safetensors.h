// The safetensors file format, written and read without any other library: an 8-byte
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin,
// end]}, "__metadata__": {string: string}} padded with spaces to a multiple of 8, then the raw
// little-endian tensor data (offsets are relative to the start of the data). PyTorch and
// numpy read it with the safetensors package, or with a few lines of struct + json.
//
// Thread safety: plain functions; a SafeTensorFile is immutable after reading.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln {

// One tensor to write: host memory holding shape.numel() elements of dtype (borrowed).
struct SafeTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  const void* data = nullptr;
};

// Writes `tensors` (in the given order) and `metadata` to `path`, replacing it. Throws
// kiln::Error naming the file on any I/O failure. Not atomic: callers that need atomicity
// write to a temporary name and rename.
void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

// A whole file read into memory; tensors are views into one owned buffer.
class SafeTensorFile {
 public:
  struct Entry {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;
    size_t begin = 0, end = 0;  // byte range within the data section
  };

  const std::string& path() const { return path_; }
  // Tensor names in the order their data appears in the file.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  // Throws kiln::Error naming the file and the tensor when it is absent.
  const Entry& entry(const std::string& name) const;
  const void* data(const std::string& name) const;
  DType dtype(const std::string& name) const { return entry(name).dtype; }
  const Shape& shape(const std::string& name) const { return entry(name).shape; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  friend SafeTensorFile read_safetensors(const std::string& path);
  std::string path_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::vector<uint8_t> bytes_;  // the data section
};

// Reads and checks `path`: a header that is not valid JSON, an unknown dtype, offsets that
// disagree with a shape, or a file shorter than its header says, is an error naming the file
// and what was expected.
SafeTensorFile read_safetensors(const std::string& path);

// "F32", "F64", "BF16", "F16", "I32", "U8".
const char* safetensors_dtype_name(DType t);

}  // namespace kiln
