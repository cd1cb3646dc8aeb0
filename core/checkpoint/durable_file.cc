// POSIX file writing with fsync, and directory replacement, for the checkpoint commit protocol.
#include "core/checkpoint/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/env.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"

namespace kiln {

namespace {

// Hash a chunk and write it while it is still in cache; large enough that the syscall cost is
// nothing next to the copy into the page cache.
constexpr size_t kChunk = 8u << 20;
// Direct writes go straight to the device; large requests keep it busy.
constexpr size_t kDirectChunk = 64u << 20;

Xxh3Stream& stream_of(void* p) { return *static_cast<Xxh3Stream*>(p); }

}  // namespace

DurableWriter::DurableWriter(const std::string& path) : path_(path), hash_(new Xxh3Stream) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    delete &stream_of(hash_);
    KILN_SYS_CHECK(-1,
                   "cannot create checkpoint file {} (is the directory writable, is the disk "
                   "full?)",
                   path);
  }
}

DurableWriter::~DurableWriter() {
  if (fd_ >= 0) ::close(fd_);
  delete &stream_of(hash_);
}

void DurableWriter::write(const void* data, size_t bytes) {
  KILN_CHECK(fd_ >= 0, "write to {} after finish()", path_);
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const size_t n = bytes < kChunk ? bytes : kChunk;
    stream_of(hash_).update(p, n);
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(fd_, p + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      KILN_SYS_CHECK(w, "writing {} bytes to {} failed at offset {} (disk full?)", n - done, path_,
                     size_ + done);
      done += static_cast<size_t>(w);
    }
    size_ += n;
    p += n;
    bytes -= n;
  }
}

FileDigest DurableWriter::finish() {
  KILN_CHECK(fd_ >= 0, "finish() of {} called twice", path_);
  KILN_SYS_CHECK(::fsync(fd_), "fsync of {} failed", path_);
  const int fd = fd_;
  fd_ = -1;
  KILN_SYS_CHECK(::close(fd), "close of {} failed", path_);
  return FileDigest{size_, stream_of(hash_).digest()};
}

FileDigest write_file_direct(const std::string& path, const void* data, uint64_t size,
                             uint64_t capacity) {
  KILN_CHECK(reinterpret_cast<uintptr_t>(data) % kFileAlign == 0 && capacity % kFileAlign == 0 &&
                 capacity >= size,
             "write_file_direct({}): buffer not aligned for direct I/O", path);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
  if (fd < 0 && errno == EINVAL) {  // tmpfs and some others: no direct I/O
    DurableWriter w(path);
    w.write(data, size);
    return w.finish();
  }
  KILN_SYS_CHECK(fd,
                 "cannot create checkpoint file {} (is the directory writable, is the disk "
                 "full?)",
                 path);
  FileDigest d{size, xxh3_64(data, size)};
  const char* p = static_cast<const char*>(data);
  uint64_t done = 0;
  std::string failure;
  while (done < capacity) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(capacity - done, kDirectChunk));
    ssize_t w = ::write(fd, p + done, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      failure = fmt::format("writing {} bytes to {} at offset {} failed: {}", n, path, done,
                            w < 0 ? errno_string() : "no progress (disk full?)");
      break;
    }
    done += static_cast<uint64_t>(w);
  }
  // The last block was written whole: cut the file to its real length.
  if (failure.empty() && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    failure = fmt::format("truncating {} to {} bytes failed: {}", path, size, errno_string());
  }
  if (failure.empty() && ::fsync(fd) != 0) {
    failure = fmt::format("fsync of {} failed: {}", path, errno_string());
  }
  ::close(fd);
  KILN_CHECK(failure.empty(), "{}", failure);
  return d;
}

FileDigest write_file_durable(const std::string& path, const std::string& text) {
  DurableWriter w(path);
  w.write(text.data(), text.size());
  return w.finish();
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  KILN_CHECK(f != nullptr, "cannot open {}: {}", path, errno_string());
  std::string out;
  char buf[1 << 16];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  KILN_CHECK(!failed, "reading {} failed", path);
  return out;
}

FileDigest digest_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  KILN_SYS_CHECK(fd, "cannot open {}", path);
  Xxh3Stream h;
  std::vector<char> buf(kChunk);
  FileDigest d;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = errno_string();
      ::close(fd);
      KILN_FAIL("reading {} failed: {}", path, why);
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    d.size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  d.xxh3 = h.digest();
  return d;
}

void fsync_dir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  KILN_SYS_CHECK(fd, "cannot open directory {} to fsync it", path);
  const int rc = ::fsync(fd);
  const std::string why = rc < 0 ? errno_string() : "";
  ::close(fd);
  KILN_CHECK(rc == 0, "fsync of directory {} failed: {}", path, why);
}

bool rename_dir_replacing(const std::string& from, const std::string& to) {
  struct stat st;
  if (::stat(to.c_str(), &st) != 0) {
    KILN_SYS_CHECK(::rename(from.c_str(), to.c_str()), "renaming {} to {} failed", from, to);
    return false;
  }
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
    return true;
  }
  // A file system without RENAME_EXCHANGE: move the old one aside first. A crash between the
  // two renames leaves the new checkpoint complete under `from`, which is not loaded, and the
  // previous step's checkpoint as the newest.
  KILN_CHECK(errno == EINVAL || errno == ENOSYS, "swapping {} with {} failed: {}", from, to,
             errno_string());
  const std::string aside = to + ".old.tmp";
  KILN_SYS_CHECK(::rename(to.c_str(), aside.c_str()), "moving {} aside failed", to);
  KILN_SYS_CHECK(::rename(from.c_str(), to.c_str()), "renaming {} to {} failed", from, to);
  KILN_SYS_CHECK(::rename(aside.c_str(), from.c_str()), "renaming {} to {} failed", aside, from);
  return true;
}

void debug_slow_phase() {
  static const int64_t ms = env::get_int("KILN_DEBUG_CKPT_SLOW_MS");
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace kiln
