// IDX: big-endian magic (0, 0, type, ndims), ndims big-endian u32 sizes, then the elements.
#include "core/data/idx.h"

#include <zlib.h>

#include "core/error.h"

namespace kiln {

namespace {

struct GzFile {
  explicit GzFile(const std::string& path) : f(gzopen(path.c_str(), "rb")) {}
  ~GzFile() {
    if (f) gzclose(f);
  }
  gzFile f;
};

void read_exact(GzFile& g, void* dst, size_t bytes, const std::string& path, const char* what) {
  size_t done = 0;
  while (done < bytes) {
    unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes - done, 1u << 30));
    int n = gzread(g.f, static_cast<char*>(dst) + done, chunk);
    if (n <= 0) {
      int err = 0;
      const char* msg = gzerror(g.f, &err);
      KILN_FAIL("{}: truncated or corrupt while reading the {} ({} of {} bytes read{}{})", path,
                what, done, bytes, err ? ": " : "", err ? msg : "");
    }
    done += static_cast<size_t>(n);
  }
}

uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzFile g(path);
  KILN_CHECK(g.f != nullptr, "cannot open {}: {}", path, errno_string());
  uint8_t magic[4];
  read_exact(g, magic, 4, path, "header");
  KILN_CHECK(magic[0] == 0 && magic[1] == 0, "{} is not an IDX file (magic {:02x}{:02x}{:02x}{:02x})",
             path, magic[0], magic[1], magic[2], magic[3]);
  KILN_CHECK(magic[2] == 0x08, "{}: IDX element type 0x{:02x} is not supported (expected 0x08, "
             "unsigned byte)", path, magic[2]);
  const int ndims = magic[3];
  KILN_CHECK(ndims >= 1 && ndims <= 4, "{}: IDX with {} dimensions", path, ndims);
  IdxArray out;
  size_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    uint8_t b[4];
    read_exact(g, b, 4, path, "header");
    out.dims.push_back(be32(b));
    total *= be32(b);
  }
  KILN_CHECK(total < (size_t{1} << 34), "{}: implausible IDX size {}", path, total);
  out.data.resize(total);
  read_exact(g, out.data.data(), total, path, "data");
  return out;
}

}  // namespace kiln
