// Checks of request fields that need no state: names, ranges, text, and checkpoint paths. Each
// returns OK or the status the coordinator answers with (INVALID_ARGUMENT for malformed values,
// OUT_OF_RANGE for numbers outside their range), its message naming the field and value.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::coord {

constexpr int kMaxWorld = 65536;
constexpr size_t kMaxPath = 4096;

grpc::Status check_job_id(std::string_view job);
// world in [1, kMaxWorld] and rank in [0, world).
grpc::Status check_rank(int64_t rank, int64_t world);
grpc::Status check_non_negative(int64_t v, const char* field);
grpc::Status check_finite(double v, const char* field);
// Printable text of at most `max` bytes (UTF-8 allowed, control characters not).
grpc::Status check_text(std::string_view s, const char* field, size_t max, bool allow_empty);
// A config hash or manifest checksum: up to 128 characters of [A-Za-z0-9:_-]; may be empty.
grpc::Status check_digest(std::string_view s, const char* field);
// Event kinds: 1-32 characters of [a-z0-9_.-].
grpc::Status check_kind(std::string_view s);
// A job's checkpoint root: empty, or an absolute path without `.`/`..` components.
grpc::Status check_checkpoint_root(std::string_view root);
// A checkpoint folder reported by a rank, relative to `root` or absolute inside it (never the
// root itself). The check is lexical: the coordinator does not see the workers' file systems.
// On success `*out` is the absolute, normalised path.
grpc::Status resolve_checkpoint_path(const std::string& root, std::string_view path,
                                     std::string* out);

}  // namespace kiln::coord
