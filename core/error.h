// The one error family of Kiln: kiln::Error carries the failed statement, file:line, rank and
// device, and a message that says what failed, with which value, and what the user can do.
// Only main, thread entry points and RPC handlers catch it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  Error(std::string message, std::string statement, const char* file, int line);
  const std::string& message() const { return message_; }
  const std::string& statement() const { return statement_; }
  const std::string& location() const { return location_; }

 private:
  std::string message_;
  std::string statement_;
  std::string location_;
};

// Where this process sits in the job; set once the communicator knows, read by errors and logs.
struct ProcessContext {
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  std::string device = "cpu";
};
ProcessContext& process_context();

[[noreturn]] void throw_error(std::string message, const char* statement, const char* file,
                              int line);

}  // namespace kiln

// KILN_CHECK(cond, "fmt", args...): throws kiln::Error naming the condition when it is false.
#define KILN_CHECK(cond, ...)                                                            \
  do {                                                                                   \
    if (!(cond)) [[unlikely]] {                                                          \
      ::kiln::throw_error(::fmt::format(__VA_ARGS__), #cond, __FILE__, __LINE__);        \
    }                                                                                    \
  } while (0)

// KILN_FAIL("fmt", args...): throws unconditionally.
#define KILN_FAIL(...) ::kiln::throw_error(::fmt::format(__VA_ARGS__), "", __FILE__, __LINE__)

// KILN_SYS_CHECK(expr, "fmt", ...): for POSIX calls returning -1 and setting errno.
#define KILN_SYS_CHECK(expr, ...)                                                        \
  do {                                                                                   \
    if ((expr) == -1) [[unlikely]] {                                                     \
      ::kiln::throw_error(::fmt::format(__VA_ARGS__) + ": " + ::kiln::errno_string(),    \
                          #expr, __FILE__, __LINE__);                                    \
    }                                                                                    \
  } while (0)

namespace kiln {
std::string errno_string();
}
