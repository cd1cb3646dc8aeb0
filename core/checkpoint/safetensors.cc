// safetensors writing (streamed from the caller's buffers through a DurableWriter) and reading
// (the whole file in one read, or its header alone with tensor bytes read on demand; either way
// a strict check of the header against the file's size).
#include "core/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {

namespace {

// A header larger than this is not a header (the format's own readers use the same bound).
constexpr uint64_t kMaxHeader = 100u << 20;

// A file open for reading, closed on every path out.
class ReadFd {
 public:
  explicit ReadFd(const std::string& path)
      : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    KILN_SYS_CHECK(fd_, "cannot open safetensors file {}", path);
  }
  ~ReadFd() { ::close(fd_); }
  ReadFd(const ReadFd&) = delete;
  ReadFd& operator=(const ReadFd&) = delete;

  uint64_t size() const {
    struct stat st;
    KILN_SYS_CHECK(::fstat(fd_, &st), "cannot stat {}", path_);
    return static_cast<uint64_t>(st.st_size);
  }
  // Exactly `len` bytes at `offset`; `what` names them in errors.
  void read(void* out, uint64_t len, uint64_t offset, const std::string& what) const {
    uint64_t got = 0;
    while (got < len) {
      const ssize_t r = ::pread(fd_, static_cast<uint8_t*>(out) + got, len - got,
                                static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      KILN_CHECK(r > 0, "reading {} of {} failed after {} of {} bytes (at offset {}): {}", what,
                 path_, got, len, offset, r < 0 ? errno_string() : "unexpected end of file");
      got += static_cast<uint64_t>(r);
    }
  }

 private:
  std::string path_;
  int fd_;
};

// 64-byte aligned so that f32/f64 tensors in the data section are naturally aligned whenever
// the tensors before them keep the alignment (Kiln's files do).
std::shared_ptr<uint8_t> aligned_bytes(uint64_t size, const std::string& path) {
  const size_t alloc = (size + 8 + 63) / 64 * 64;
  std::shared_ptr<uint8_t> bytes(static_cast<uint8_t*>(std::aligned_alloc(64, alloc)), std::free);
  KILN_CHECK(bytes != nullptr, "out of memory reading {} ({} bytes)", path, size);
  return bytes;
}

DType parse_st_dtype(const std::string& s, const std::string& origin, const std::string& name) {
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::u8}) {
    if (s == safetensors_dtype_name(t)) return t;
  }
  KILN_FAIL("{}: tensor '{}' has dtype '{}'; Kiln reads F32, F64, BF16, F16, I32 and U8", origin,
            name, s);
}

// The JSON header, padded with spaces so that the data section starts at a multiple of `align`.
std::string build_header(const std::vector<SafeTensor>& tensors,
                         const std::map<std::string, std::string>& metadata, size_t align) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafeTensor& t : tensors) {
    KILN_CHECK(!t.name.empty() && t.name != "__metadata__", "invalid tensor name '{}'", t.name);
    KILN_CHECK(!h.contains(t.name), "tensor '{}' given twice", t.name);
    const uint64_t bytes = static_cast<uint64_t>(t.shape.numel()) * dtype_size(t.dtype);
    h[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                 {"shape", t.shape.to_vector()},
                 {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = h.dump();
  json.append((align - (8 + json.size()) % align) % align, ' ');
  return json;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i32:
      return "I32";
    case DType::u8:
      return "U8";
  }
  return "?";
}

FileDigest write_safetensors_digest(const std::string& path, const std::vector<SafeTensor>& tensors,
                                    const std::map<std::string, std::string>& metadata) {
  // The format asks for an 8-byte aligned data section.
  const std::string header = build_header(tensors, metadata, 8);
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  DurableWriter w(path);
  w.write(len, 8);
  w.write(header.data(), header.size());
  for (const SafeTensor& t : tensors) {
    const size_t bytes = static_cast<size_t>(t.shape.numel()) * dtype_size(t.dtype);
    if (bytes > 0) w.write(t.data, bytes);
  }
  return w.finish();
}

void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_safetensors_digest(path, tensors, metadata);
}

SafeTensorsImage::SafeTensorsImage(const std::vector<SafeTensor>& tensors,
                                   const std::map<std::string, std::string>& metadata)
    : buf_(nullptr, std::free) {
  const std::string header = build_header(tensors, metadata, kFileAlign);
  const uint64_t data_start = 8 + header.size();
  size_ = data_start;
  for (const SafeTensor& t : tensors) {
    offsets_.push_back(size_);
    size_ += static_cast<uint64_t>(t.shape.numel()) * dtype_size(t.dtype);
  }
  capacity_ = (size_ + kFileAlign - 1) / kFileAlign * kFileAlign;
  buf_.reset(static_cast<uint8_t*>(std::aligned_alloc(kFileAlign, capacity_)));
  KILN_CHECK(buf_ != nullptr, "out of host memory for a {} byte checkpoint file image", capacity_);
  // Zeroed once: the page faults of first touching it happen here, not in a timed snapshot.
  std::memset(buf_.get(), 0, capacity_);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) buf_.get()[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(buf_.get() + 8, header.data(), header.size());
}

FileDigest SafeTensorsImage::write(const std::string& path) const {
  return write_file_direct(path, buf_.get(), size_, capacity_);
}

std::vector<std::string> SafeTensorFile::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

const SafeTensorFile::Entry& SafeTensorFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    std::string have;
    for (const Entry& e : entries_) have += (have.empty() ? "" : ", ") + e.name;
    KILN_FAIL("{} has no tensor '{}' (it holds: {})", path_, name, have);
  }
  return entries_[it->second];
}

const void* SafeTensorFile::data(const std::string& name) const {
  const Entry& e = entry(name);
  KILN_CHECK(data_start_ != nullptr,
             "{}: tensor '{}' was not read (only the header of the file was); use read_bytes",
             path_, name);
  return data_start_ + e.begin;
}

void SafeTensorFile::read_bytes(const std::string& name, uint64_t offset, uint64_t len,
                                void* out) const {
  const Entry& e = entry(name);
  KILN_CHECK(offset <= e.end - e.begin && len <= e.end - e.begin - offset,
             "{}: bytes [{}, {}) of tensor '{}' lie outside its {} bytes", path_, offset,
             offset + len, name, e.end - e.begin);
  if (data_start_ != nullptr) {
    std::memcpy(out, data_start_ + e.begin + offset, len);
  } else {
    ReadFd(path_).read(out, len, data_offset_ + e.begin + offset, "tensor '" + name + "'");
  }
}

const std::string& SafeTensorFile::meta(const std::string& key) const {
  auto it = metadata_.find(key);
  KILN_CHECK(it != metadata_.end(),
             "{}: metadata key '{}' is missing (not a file Kiln wrote, or "
             "from another version)",
             path_, key);
  return it->second;
}

SafeTensorFile parse_safetensors(std::string origin, std::shared_ptr<uint8_t> bytes,
                                 uint64_t size) {
  return SafeTensorFile::parse(std::move(origin), std::move(bytes), size, true);
}

SafeTensorFile SafeTensorFile::parse(std::string origin, std::shared_ptr<uint8_t> bytes,
                                     uint64_t size, bool in_memory) {
  KILN_CHECK(size >= 8,
             "{}: truncated safetensors file: {} bytes, but the format starts with "
             "an 8-byte header length",
             origin, size);
  const uint8_t* p = bytes.get();
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(p[i]) << (8 * i);
  KILN_CHECK(n <= kMaxHeader,
             "{}: bad safetensors header length {} (at most {} expected): not a "
             "safetensors file, or a corrupted one",
             origin, n, kMaxHeader);
  KILN_CHECK(8 + n <= size,
             "{}: truncated safetensors file: the header says {} bytes of JSON "
             "follow, but the file has {} bytes in all",
             origin, n, size);
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(reinterpret_cast<const char*>(p + 8),
                              reinterpret_cast<const char*>(p + 8 + n));
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("{}: the safetensors header is not valid JSON ({})", origin, e.what());
  }
  KILN_CHECK(h.is_object(), "{}: the safetensors header must be a JSON object", origin);

  SafeTensorFile f;
  f.path_ = std::move(origin);
  f.bytes_ = std::move(bytes);
  f.data_offset_ = 8 + n;
  f.data_start_ = in_memory ? p + 8 + n : nullptr;
  const uint64_t data_size = size - 8 - n;
  uint64_t covered = 0;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      KILN_CHECK(v.is_object(), "{}: __metadata__ must be an object of strings", f.path_);
      for (auto m = v.begin(); m != v.end(); ++m) {
        KILN_CHECK(m.value().is_string(), "{}: __metadata__.{} must be a string", f.path_, m.key());
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    KILN_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") &&
                   v.contains("data_offsets") && v["dtype"].is_string() && v["shape"].is_array() &&
                   v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
               "{}: tensor '{}' needs \"dtype\" (string), \"shape\" (array) and "
               "\"data_offsets\" ([begin, end]); found {}",
               f.path_, name, v.dump());
    SafeTensorFile::Entry e;
    e.name = name;
    e.dtype = parse_st_dtype(v["dtype"].get<std::string>(), f.path_, name);
    std::vector<int64_t> dims;
    for (const auto& d : v["shape"]) {
      KILN_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                 "{}: tensor '{}' has a bad shape {}", f.path_, name, v["shape"].dump());
      dims.push_back(d.get<int64_t>());
    }
    KILN_CHECK(static_cast<int>(dims.size()) <= Shape::kMaxDims,
               "{}: tensor '{}' has {} dimensions; Kiln handles up to {}", f.path_, name,
               dims.size(), Shape::kMaxDims);
    e.shape = Shape(dims);
    const auto& off = v["data_offsets"];
    KILN_CHECK(off[0].is_number_unsigned() && off[1].is_number_unsigned(),
               "{}: tensor '{}' has bad data_offsets {}", f.path_, name, off.dump());
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    const uint64_t want = static_cast<uint64_t>(e.shape.numel()) * dtype_size(e.dtype);
    KILN_CHECK(e.begin <= e.end && e.end - e.begin == want,
               "{}: tensor '{}' of shape {} in {} needs {} bytes, but its data_offsets [{}, {}] "
               "give {}",
               f.path_, name, e.shape.str(), safetensors_dtype_name(e.dtype), want, e.begin, e.end,
               e.end - e.begin);
    KILN_CHECK(e.end <= data_size,
               "{}: truncated safetensors file: tensor '{}' ends at byte {} "
               "of the data section, which holds only {} bytes (file size {})",
               f.path_, name, e.end, data_size, size);
    covered = std::max(covered, e.end);
    f.entries_.push_back(std::move(e));
  }
  std::sort(f.entries_.begin(), f.entries_.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin; });
  uint64_t expect = 0;
  for (size_t i = 0; i < f.entries_.size(); ++i) {
    KILN_CHECK(f.entries_[i].begin == expect || f.entries_[i].begin == f.entries_[i].end,
               "{}: tensor '{}' starts at byte {} of the data section, expected {} (tensors must "
               "be back to back, without overlap or holes)",
               f.path_, f.entries_[i].name, f.entries_[i].begin, expect);
    expect = std::max(expect, f.entries_[i].end);
    f.index_[f.entries_[i].name] = i;
  }
  KILN_CHECK(covered == data_size,
             "{}: the data section holds {} bytes but the tensors cover {} "
             "(trailing bytes: a corrupted or foreign file)",
             f.path_, data_size, covered);
  return f;
}

SafeTensorFile read_safetensors(const std::string& path) {
  const ReadFd fd(path);
  const uint64_t size = fd.size();
  std::shared_ptr<uint8_t> bytes = aligned_bytes(size, path);
  fd.read(bytes.get(), size, 0, "the file");
  return parse_safetensors(path, std::move(bytes), size);
}

SafeTensorFile read_safetensors_header(const std::string& path) {
  const ReadFd fd(path);
  const uint64_t size = fd.size();
  uint8_t len[8] = {};
  // A file too short for the length is reported by parse(), as for a whole read.
  if (size >= 8) fd.read(len, 8, 0, "the header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  const uint64_t head = size < 8 ? size : 8 + std::min({n, kMaxHeader, size - 8});
  std::shared_ptr<uint8_t> bytes = aligned_bytes(head, path);
  fd.read(bytes.get(), head, 0, "the header");
  return SafeTensorFile::parse(path, std::move(bytes), size, false);
}

}  // namespace kiln
