// Job tokens: the coordinator's token file, the worker's token, and the check of the
// `authorization: Bearer <token>` metadata that every call carries. A token file holds one
// token per line: `TOKEN` admits every job, `JOB TOKEN` admits that job only; `#` starts a
// comment. Tokens are 16-1024 printable characters without spaces.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::coord {

struct TokenEntry {
  std::string job;  // empty: every job
  std::string token;
};

// Parses a token file; errors name the file and line. Warns when others may read the file.
std::vector<TokenEntry> read_token_file(const std::string& path);
// Checks one token's form; `what` names where it came from for the error.
void check_token(std::string_view token, const std::string& what);

// The tokens a coordinator accepts. Thread-safe for reading after construction.
class TokenSet {
 public:
  explicit TokenSet(std::vector<TokenEntry> entries);
  // What the presented token admits: nullopt = nothing (unknown), "" = every job, else one job.
  // The comparison takes the same time whatever the tokens' contents.
  std::optional<std::string> scope(std::string_view presented) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<TokenEntry> entries_;
};

// The token of metadata value "Bearer <token>", or empty when it has another form.
std::string_view bearer_token(std::string_view authorization);

// The worker/client side: the token for `job` from `token_file` (an entry for the job, else an
// every-job entry), else from KILN_COORDINATOR_TOKEN. Throws naming both sources when neither
// gives one.
std::string client_token(const std::string& token_file, const std::string& job);

// 32 random bytes from the kernel as 64 hex digits.
std::string generate_token();

// The coordinator's tokens: --token-file, else KILN_COORDINATOR_TOKEN, else `state_dir/token`
// (generated, mode 0600, on first start). Logs which source it used.
std::vector<TokenEntry> server_tokens(const std::string& token_file, const std::string& state_dir);

}  // namespace kiln::coord
