// Job tokens: reading token files, checking presented tokens, generating new ones.
#include "launcher/coordinator/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/env.h"
#include "core/error.h"
#include "core/log.h"

namespace kiln::coord {

namespace {

constexpr size_t kMinToken = 16, kMaxToken = 1024;

bool job_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Equal-length comparison whose time does not depend on where the first difference is.
bool same_bytes(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

void check_token(std::string_view token, const std::string& what) {
  KILN_CHECK(token.size() >= kMinToken && token.size() <= kMaxToken,
             "{}: a token must be {}-{} characters long, this one has {}; generate one with "
             "`openssl rand -hex 32`",
             what, kMinToken, kMaxToken, token.size());
  for (char c : token) {
    KILN_CHECK(c > ' ' && c < 127,
               "{}: a token may hold printable characters only, without "
               "spaces (found byte {})",
               what, static_cast<int>(static_cast<unsigned char>(c)));
  }
}

std::vector<TokenEntry> read_token_file(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "cannot read the token file {}: {}", path, errno_string());
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    KILN_LOG_WARN("coord",
                  "token file {} may be read by other users (mode {:o}); "
                  "`chmod 600 {}` keeps the job's token private",
                  path, st.st_mode & 0777, path);
  }
  std::vector<TokenEntry> entries;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string a, b, extra;
    fields >> a >> b >> extra;
    if (a.empty()) continue;
    const std::string where = fmt::format("{}:{}", path, n);
    KILN_CHECK(extra.empty(), "{}: expected `TOKEN` or `JOB TOKEN`, found more fields", where);
    TokenEntry e;
    if (b.empty()) {
      e.token = a;
    } else {
      e.job = a;
      e.token = b;
      KILN_CHECK(e.job.size() <= 64 && std::all_of(e.job.begin(), e.job.end(), job_id_char),
                 "{}: job id '{}' must be 1-64 characters of [A-Za-z0-9._-]", where, e.job);
    }
    check_token(e.token, where);
    entries.push_back(std::move(e));
  }
  KILN_CHECK(!entries.empty(), "token file {} holds no token; put one token on a line", path);
  return entries;
}

TokenSet::TokenSet(std::vector<TokenEntry> entries) : entries_(std::move(entries)) {}

std::optional<std::string> TokenSet::scope(std::string_view presented) const {
  std::optional<std::string> found;
  // Every entry is compared, so the time taken does not tell which one matched.
  for (const TokenEntry& e : entries_) {
    if (same_bytes(e.token, presented) && !found) found = e.job;
  }
  return found;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.size() <= kPrefix.size() ||
      authorization.substr(0, kPrefix.size()) != kPrefix) {
    return {};
  }
  return authorization.substr(kPrefix.size());
}

std::string client_token(const std::string& token_file, const std::string& job) {
  if (!token_file.empty()) {
    std::vector<TokenEntry> entries = read_token_file(token_file);
    for (const TokenEntry& e : entries) {
      if (e.job == job) return e.token;
    }
    for (const TokenEntry& e : entries) {
      if (e.job.empty()) return e.token;
    }
    KILN_FAIL("token file {} has no token for job '{}' and no every-job token", token_file, job);
  }
  KILN_CHECK(env::is_set("KILN_COORDINATOR_TOKEN"),
             "no coordinator token: set coordinator.token_file (or --token-file) to the job's "
             "token file, or export KILN_COORDINATOR_TOKEN");
  std::string token = env::get("KILN_COORDINATOR_TOKEN");
  check_token(token, "KILN_COORDINATOR_TOKEN");
  return token;
}

std::string generate_token() {
  unsigned char bytes[32];
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  KILN_SYS_CHECK(fd, "cannot open /dev/urandom to generate a token");
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::read(fd, bytes + got, sizeof(bytes) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      KILN_FAIL("cannot read /dev/urandom to generate a token: {}", errno_string());
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

std::vector<TokenEntry> server_tokens(const std::string& token_file, const std::string& state_dir) {
  if (!token_file.empty()) {
    std::vector<TokenEntry> entries = read_token_file(token_file);
    KILN_LOG_INFO("coord", "auth: {} token(s) from {}", entries.size(), token_file);
    return entries;
  }
  if (env::is_set("KILN_COORDINATOR_TOKEN")) {
    std::string token = env::get("KILN_COORDINATOR_TOKEN");
    check_token(token, "KILN_COORDINATOR_TOKEN");
    KILN_LOG_INFO("coord", "auth: the token from KILN_COORDINATOR_TOKEN");
    return {TokenEntry{"", token}};
  }
  const std::string path = (std::filesystem::path(state_dir) / "token").string();
  if (!std::filesystem::exists(path)) {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    KILN_SYS_CHECK(fd, "cannot create the token file {}", tmp);
    const std::string text = generate_token() + "\n";
    ssize_t n = ::write(fd, text.data(), text.size());
    int synced = ::fsync(fd);
    ::close(fd);
    KILN_CHECK(n == static_cast<ssize_t>(text.size()) && synced == 0,
               "cannot write the token file {}: {}", tmp, errno_string());
    KILN_SYS_CHECK(::rename(tmp.c_str(), path.c_str()), "cannot rename {} to {}", tmp, path);
    KILN_LOG_INFO("coord",
                  "auth: generated a token into {} (give it to the job as "
                  "coordinator.token_file)",
                  path);
  } else {
    KILN_LOG_INFO("coord", "auth: the token in {}", path);
  }
  return read_token_file(path);
}

}  // namespace kiln::coord
