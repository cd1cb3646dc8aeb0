// kiln::Error and the process context it reports.
#include "core/error.h"

#include <cerrno>
#include <cstring>

namespace kiln {

namespace {
std::string compose(const std::string& message, const std::string& statement, const char* file,
                    int line) {
  const ProcessContext& ctx = process_context();
  std::string where = fmt::format("{}:{}", file, line);
  std::string out = message;
  if (ctx.world <= 0) {  // a process that is no rank (the kiln launch supervisor)
    out += fmt::format(" [at {}", where);
  } else {
    out += fmt::format(" [rank {}/{} on {}, at {}", ctx.rank, ctx.world, ctx.device, where);
  }
  if (!statement.empty()) out += fmt::format(", check `{}`", statement);
  out += "]";
  return out;
}
}  // namespace

Error::Error(std::string message, std::string statement, const char* file, int line)
    : std::runtime_error(compose(message, statement, file, line)),
      message_(std::move(message)),
      statement_(std::move(statement)),
      location_(fmt::format("{}:{}", file, line)) {}

ProcessContext& process_context() {
  static ProcessContext ctx;
  return ctx;
}

void throw_error(std::string message, const char* statement, const char* file, int line) {
  // Shorten the path to the part inside the repository.
  const char* p = std::strstr(file, "/core/");
  for (const char* dir : {"/comm/", "/optim/", "/models/", "/launcher/", "/tests/"}) {
    if (!p) p = std::strstr(file, dir);
  }
  throw Error(std::move(message), statement, p ? p + 1 : file, line);
}

std::string errno_string() {
  int e = errno;
  return fmt::format("{} (errno {})", std::strerror(e), e);
}

}  // namespace kiln
