// safetensors writer and reader (format in safetensors.h).
#include "core/checkpoint/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation allows

struct DTypeName {
  DType dtype;
  const char* name;
};
constexpr DTypeName kNames[] = {{DType::f32, "F32"}, {DType::f64, "F64"}, {DType::bf16, "BF16"},
                                {DType::f16, "F16"}, {DType::i32, "I32"}, {DType::u8, "U8"}};

bool parse_dtype_name(const std::string& s, DType* out) {
  for (const DTypeName& n : kNames) {
    if (s == n.name) {
      *out = n.dtype;
      return true;
    }
  }
  return false;
}

struct FileCloser {
  void operator()(std::FILE* f) const noexcept {
    if (f) std::fclose(f);
  }
};

}  // namespace

const char* safetensors_dtype_name(DType t) {
  for (const DTypeName& n : kNames) {
    if (n.dtype == t) return n.name;
  }
  return "?";
}

void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const SafeTensor& t : tensors) {
    KILN_CHECK(!t.name.empty() && t.name != "__metadata__" && !header.contains(t.name),
               "write_safetensors {}: tensor name '{}' is empty, reserved or repeated", path,
               t.name);
    const uint64_t bytes = static_cast<uint64_t>(t.shape.numel()) * dtype_size(t.dtype);
    KILN_CHECK(bytes == 0 || t.data != nullptr, "write_safetensors {}: tensor '{}' has no data",
               path, t.name);
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape.to_vector()},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  KILN_CHECK(f != nullptr, "cannot create {}: {}; check that its folder exists and is writable",
             path, errno_string());
  uint8_t len[8];
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f.get()) == 8 &&
            std::fwrite(text.data(), 1, text.size(), f.get()) == text.size();
  for (const SafeTensor& t : tensors) {
    const size_t bytes = static_cast<size_t>(t.shape.numel()) * dtype_size(t.dtype);
    if (ok && bytes) ok = std::fwrite(t.data, 1, bytes, f.get()) == bytes;
  }
  ok = ok && std::fflush(f.get()) == 0;
  KILN_CHECK(ok, "writing {} failed: {} (is the disk full?)", path, errno_string());
  std::FILE* raw = f.release();
  KILN_CHECK(std::fclose(raw) == 0, "closing {} failed: {}", path, errno_string());
}

std::vector<std::string> SafeTensorFile::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

const SafeTensorFile::Entry& SafeTensorFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  KILN_CHECK(it != index_.end(), "{} holds no tensor named '{}' ({} tensors)", path_, name,
             entries_.size());
  return entries_[it->second];
}

const void* SafeTensorFile::data(const std::string& name) const {
  const Entry& e = entry(name);
  return bytes_.data() + e.begin;
}

SafeTensorFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  KILN_CHECK(in.good(), "cannot open {}: {}", path, errno_string());
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  KILN_CHECK(size >= 8,
             "{} is not a safetensors file: {} bytes, shorter than the 8-byte header "
             "length",
             path, size);
  uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  KILN_CHECK(n <= kMaxHeaderBytes && 8 + n <= size,
             "{} is truncated or not a safetensors file: its header claims {} bytes but the file "
             "holds {} after the length",
             path, n, size - 8);
  std::string text(static_cast<size_t>(n), '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  KILN_CHECK(in.good(), "reading the header of {} failed: {}", path, errno_string());

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("{}: the safetensors header is not valid JSON ({})", path, e.what());
  }
  KILN_CHECK(header.is_object(), "{}: the safetensors header is not a JSON object", path);

  SafeTensorFile f;
  f.path_ = path;
  const uint64_t data_size = size - 8 - n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const nlohmann::json& v = it.value();
    if (it.key() == "__metadata__") {
      KILN_CHECK(v.is_object(), "{}: __metadata__ must map strings to strings", path);
      for (auto m = v.begin(); m != v.end(); ++m) {
        KILN_CHECK(m.value().is_string(), "{}: __metadata__ value of '{}' is not a string", path,
                   m.key());
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    KILN_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") &&
                   v.contains("data_offsets") && v["dtype"].is_string() && v["shape"].is_array() &&
                   v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
               "{}: entry '{}' needs dtype, shape and data_offsets [begin, end]", path, it.key());
    SafeTensorFile::Entry e;
    e.name = it.key();
    const std::string dt = v["dtype"].get<std::string>();
    KILN_CHECK(parse_dtype_name(dt, &e.dtype),
               "{}: tensor '{}' has dtype {}, which Kiln does "
               "not read (F32, F64, BF16, F16, I32, U8)",
               path, e.name, dt);
    std::vector<int64_t> dims;
    for (const auto& d : v["shape"]) {
      KILN_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0,
                 "{}: tensor '{}' has a bad "
                 "shape {}",
                 path, e.name, v["shape"].dump());
      dims.push_back(d.get<int64_t>());
    }
    KILN_CHECK(static_cast<int>(dims.size()) <= Shape::kMaxDims,
               "{}: tensor '{}' has {} "
               "dimensions; Kiln takes at most {}",
               path, e.name, dims.size(), Shape::kMaxDims);
    e.shape = Shape(dims);
    KILN_CHECK(
        v["data_offsets"][0].is_number_unsigned() && v["data_offsets"][1].is_number_unsigned(),
        "{}: tensor '{}' has bad data_offsets {}", path, e.name, v["data_offsets"].dump());
    e.begin = v["data_offsets"][0].get<size_t>();
    e.end = v["data_offsets"][1].get<size_t>();
    const uint64_t want = static_cast<uint64_t>(e.shape.numel()) * dtype_size(e.dtype);
    KILN_CHECK(e.begin <= e.end && e.end - e.begin == want,
               "{}: tensor '{}' of shape {} {} needs {} bytes but its data_offsets [{}, {}] "
               "span {}",
               path, e.name, dt, e.shape.str(), want, e.begin, e.end, e.end - e.begin);
    KILN_CHECK(e.end <= data_size,
               "{} is truncated: tensor '{}' ends at byte {} of the data "
               "section, which holds only {} bytes",
               path, e.name, e.end, data_size);
    f.entries_.push_back(e);
  }
  std::sort(f.entries_.begin(), f.entries_.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < f.entries_.size(); ++i) f.index_[f.entries_[i].name] = i;

  f.bytes_.resize(static_cast<size_t>(data_size));
  in.read(reinterpret_cast<char*>(f.bytes_.data()), static_cast<std::streamsize>(data_size));
  KILN_CHECK(in.good() || data_size == 0, "reading the data of {} failed: {}", path,
             errno_string());
  return f;
}

}  // namespace kiln
