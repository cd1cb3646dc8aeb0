// The safetensors file format, written and read without the Python package: an 8-byte
// little-endian header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets"},
// "__metadata__": {string: string}} padded with spaces so the data starts on an 8-byte boundary,
// then the tensors' raw little-endian bytes, back to back. Kiln's model.safetensors and optimizer
// shards use it; PyTorch and any safetensors reader can load them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint/durable_file.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace kiln {

// One tensor to write; `data` is host memory of shape.numel() * dtype_size(dtype) bytes that
// stays valid for the duration of the call.
struct SafeTensor {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;
};

// Writes `tensors` (in this order) and `metadata` to `path`, fsynced before it returns.
void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);
// The same, returning the file's size and checksum for a manifest.
FileDigest write_safetensors_digest(const std::string& path, const std::vector<SafeTensor>& tensors,
                                    const std::map<std::string, std::string>& metadata);

// A whole safetensors file laid out in one host buffer - the header, then each tensor's bytes -
// so that a checkpoint snapshot copies tensors straight to their place in the file, and the file
// goes to disk in one direct (DMA, no page-cache copy) write. The header is padded with spaces
// (as the format allows) so that the data section starts at a multiple of kFileAlign.
// Not thread-safe; the buffer is reused from save to save.
class SafeTensorsImage {
 public:
  // `tensors` give names, dtypes and shapes (their data pointers are not used).
  SafeTensorsImage(const std::vector<SafeTensor>& tensors,
                   const std::map<std::string, std::string>& metadata);
  // Where tensor i (in the order given) goes.
  void* data(size_t i) { return buf_.get() + offsets_.at(i); }
  uint64_t size() const { return size_; }  // bytes of the file
  // Writes the file durably (see write_file_direct) and returns its digest.
  FileDigest write(const std::string& path) const;

 private:
  std::unique_ptr<uint8_t, void (*)(void*)> buf_;
  std::vector<uint64_t> offsets_;
  uint64_t size_ = 0, capacity_ = 0;
};

// A file read and validated: either whole into memory (read_safetensors; owns the bytes the
// data pointers refer to) or by its header only (read_safetensors_header), whose tensors are
// then read piecewise from the file with read_bytes.
class SafeTensorFile {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin = 0, end = 0;  // byte offsets into the data section
  };

  const std::string& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }  // in data order
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // These throw, naming the file and the tensor, when `name` is absent.
  const Entry& entry(const std::string& name) const;
  DType dtype(const std::string& name) const { return entry(name).dtype; }
  const Shape& shape(const std::string& name) const { return entry(name).shape; }
  // In memory only: throws for a file read by its header.
  const void* data(const std::string& name) const;
  // Copies `len` bytes from `offset` bytes into tensor `name`'s data to `out`: from memory, or
  // read from the file (which must not have changed since its header was read).
  void read_bytes(const std::string& name, uint64_t offset, uint64_t len, void* out) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A metadata value; throws naming the key and the file when it is missing.
  const std::string& meta(const std::string& key) const;

 private:
  friend SafeTensorFile parse_safetensors(std::string origin, std::shared_ptr<uint8_t> bytes,
                                          uint64_t size);
  friend SafeTensorFile read_safetensors_header(const std::string& path);
  // `bytes` holds the 8-byte length and the header of a file of `size` bytes, and all of the
  // file when `in_memory`.
  static SafeTensorFile parse(std::string origin, std::shared_ptr<uint8_t> bytes, uint64_t size,
                              bool in_memory);
  std::string path_;
  std::shared_ptr<uint8_t> bytes_;
  const uint8_t* data_start_ = nullptr;  // null when read by the header only
  uint64_t data_offset_ = 0;             // where the data section starts in the file
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Reads and validates `path`: a truncated file or a bad header is an error naming the file and
// what was expected.
SafeTensorFile read_safetensors(const std::string& path);
// Reads and validates the header of `path` against the file's size, not the tensor bytes: a
// rank that needs part of a large file reads only that part (SafeTensorFile::read_bytes).
SafeTensorFile read_safetensors_header(const std::string& path);
// Validates bytes already in memory (`origin` names them in errors).
SafeTensorFile parse_safetensors(std::string origin, std::shared_ptr<uint8_t> bytes, uint64_t size);

// "F32", "BF16", ... as the format spells them.
const char* safetensors_dtype_name(DType t);

}  // namespace kiln
