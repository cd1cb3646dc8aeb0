// Stateless checks of request fields.
#include "launcher/coordinator/validate.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

namespace kiln::coord {

namespace {

grpc::Status invalid(std::string msg) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(msg));
}

// Shows a client-supplied string safely in a message: bounded, control bytes escaped.
std::string shown(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= 80) out += "...";
  return out;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace

grpc::Status check_job_id(std::string_view job) {
  bool ok = !job.empty() && job.size() <= 64;
  for (char c : job) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (ok) return grpc::Status::OK;
  return invalid(fmt::format("job '{}' must be 1-64 characters of [A-Za-z0-9._-]", shown(job)));
}

grpc::Status check_rank(int64_t rank, int64_t world) {
  if (world < 1 || world > kMaxWorld) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        fmt::format("world {} is outside [1, {}]", world, kMaxWorld));
  }
  if (rank < 0 || rank >= world) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        fmt::format("rank {} is outside [0, {}) for world {}", rank, world, world));
  }
  return grpc::Status::OK;
}

grpc::Status check_non_negative(int64_t v, const char* field) {
  if (v >= 0) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, fmt::format("{} = {} is negative", field, v));
}

grpc::Status check_finite(double v, const char* field) {
  if (std::isfinite(v)) return grpc::Status::OK;
  return invalid(fmt::format("{} = {} is not a finite number", field, v));
}

grpc::Status check_text(std::string_view s, const char* field, size_t max, bool allow_empty) {
  if (s.empty() && !allow_empty) return invalid(fmt::format("{} is empty", field));
  if (s.size() > max) {
    return invalid(fmt::format("{} is {} bytes long, more than {}", field, s.size(), max));
  }
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      return invalid(fmt::format("{} '{}' holds a control character", field, shown(s)));
    }
  }
  return grpc::Status::OK;
}

grpc::Status check_digest(std::string_view s, const char* field) {
  bool ok = s.size() <= 128;
  for (char c : s) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == ':' || c == '_' || c == '-');
  }
  if (ok) return grpc::Status::OK;
  return invalid(
      fmt::format("{} '{}' must be at most 128 characters of [A-Za-z0-9:_-]", field, shown(s)));
}

grpc::Status check_kind(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 32;
  for (char c : s) {
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-');
  }
  if (ok) return grpc::Status::OK;
  return invalid(fmt::format("event kind '{}' must be 1-32 characters of [a-z0-9_.-]", shown(s)));
}

grpc::Status check_checkpoint_root(std::string_view root) {
  if (root.empty()) return grpc::Status::OK;
  if (grpc::Status s = check_text(root, "checkpoint_root", kMaxPath, false); !s.ok()) return s;
  if (root.front() != '/') {
    return invalid(fmt::format("checkpoint_root '{}' is not an absolute path", shown(root)));
  }
  for (std::string_view part : components(root)) {
    if (part == "." || part == "..") {
      return invalid(
          fmt::format("checkpoint_root '{}' holds a '{}' component; send the "
                      "normalised absolute path",
                      shown(root), part));
    }
  }
  return grpc::Status::OK;
}

grpc::Status resolve_checkpoint_path(const std::string& root, std::string_view path,
                                     std::string* out) {
  if (grpc::Status s = check_text(path, "checkpoint path", kMaxPath, false); !s.ok()) return s;
  for (std::string_view part : components(path)) {
    if (part == "..") {
      return invalid(
          fmt::format("checkpoint path '{}' holds a '..' component: checkpoints "
                      "must stay inside the job's checkpoint root",
                      shown(path)));
    }
  }
  if (root.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the job has no checkpoint root: its ranks registered with an empty "
                        "checkpoint_root (set checkpoint.dir)");
  }
  std::vector<std::string_view> root_parts = components(root);
  std::vector<std::string_view> parts = components(path);
  std::vector<std::string_view> rel;
  if (path.front() == '/') {
    bool inside = parts.size() > root_parts.size();
    for (size_t i = 0; inside && i < root_parts.size(); ++i) inside = parts[i] == root_parts[i];
    if (!inside) {
      return invalid(
          fmt::format("checkpoint path '{}' is outside the job's checkpoint root "
                      "'{}'",
                      shown(path), shown(root)));
    }
    rel.assign(parts.begin() + static_cast<std::ptrdiff_t>(root_parts.size()), parts.end());
  } else {
    rel = parts;
  }
  std::string result;
  for (std::string_view part : root_parts) {
    result += '/';
    result += part;
  }
  size_t kept = 0;
  for (std::string_view part : rel) {
    if (part == ".") continue;
    result += '/';
    result += part;
    ++kept;
  }
  if (kept == 0) {
    return invalid(
        fmt::format("checkpoint path '{}' names the checkpoint root itself, not a "
                    "checkpoint folder inside it",
                    shown(path)));
  }
  *out = std::move(result);
  return grpc::Status::OK;
}

}  // namespace kiln::coord
