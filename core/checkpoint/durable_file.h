// Files that are on disk when the call returns: a writer that checksums (xxHash3) what it writes
// and fsyncs on finish, directory fsync, atomic replacement of a directory, and checksumming of
// a file already written. The commit protocol of checkpoints (DESIGN decision 8) is built on it.
//
// Thread safety: a DurableWriter is used by one thread; the free functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

// What the manifest records of one file.
struct FileDigest {
  uint64_t size = 0;
  uint64_t xxh3 = 0;
};

class DurableWriter {
 public:
  // Creates (or truncates) `path`.
  explicit DurableWriter(const std::string& path);
  ~DurableWriter();  // closes without fsync when finish() was not reached (the file is garbage)
  DurableWriter(const DurableWriter&) = delete;
  DurableWriter& operator=(const DurableWriter&) = delete;

  // Appends `bytes`, hashing them on the way (large writes are split into chunks that are
  // hashed while still in cache).
  void write(const void* data, size_t bytes);
  // fsyncs and closes; returns the size and checksum of everything written.
  FileDigest finish();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  void* hash_;  // Xxh3Stream, kept opaque so that callers do not pull in the hash header
};

// Alignment of buffers, lengths and offsets for direct I/O (the largest logical block size).
inline constexpr uint64_t kFileAlign = 4096;

// Writes the first `size` bytes of `data` to `path` durably. `data` is kFileAlign-aligned and
// `capacity` (a multiple of kFileAlign, >= size) bytes long: the file is written with O_DIRECT,
// straight from `data` to the device, then cut to `size`. Where the file system does not take
// O_DIRECT, an ordinary write is used.
FileDigest write_file_direct(const std::string& path, const void* data, uint64_t size,
                             uint64_t capacity);
// Writes `text` to `path` durably.
FileDigest write_file_durable(const std::string& path, const std::string& text);
// Reads a whole (small) file; throws naming the path when it cannot.
std::string read_file(const std::string& path);
// Size and checksum of a file on disk (streamed; any size).
FileDigest digest_file(const std::string& path);
// fsync of a directory, so that entries created, renamed or removed in it are durable.
void fsync_dir(const std::string& path);
// Makes `from` (a complete directory) appear at `to` in one step. When `to` exists it is swapped
// atomically (renameat2 RENAME_EXCHANGE), so a reader sees either the old or the new directory,
// never neither; the old one ends at `from` and the caller removes it.
// Returns true when an old directory was swapped out to `from`.
bool rename_dir_replacing(const std::string& from, const std::string& to);

// Debug hook for crash tests: KILN_DEBUG_CKPT_SLOW_MS sleeps between the phases of a save, so
// that a kill lands inside one with high probability.
void debug_slow_phase();

}  // namespace kiln
