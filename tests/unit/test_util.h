// Helpers shared by the unit tests: random tensors, the one comparison helper (NaN/Inf first,
// then |a - r| <= atol + rtol * |r|, printing the worst elements), and temporary folders.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::test {

// Uniform values in [lo, hi) from (seed), as a CPU tensor of `dtype` (f32 or f64).
Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, double lo = -1.0,
                     double hi = 1.0);
// n class labels uniform in [0, classes), as a CPU i32 tensor, from (seed).
Tensor random_labels(int64_t n, int64_t classes, uint64_t seed);
// Values of a CPU float tensor as doubles.
std::vector<double> as_doubles(const Tensor& t);

// Compares actual against reference element-wise: any NaN/Inf in actual (where the reference is
// finite) fails first; then |a - r| <= atol + rtol * |r|. On failure the message lists the
// worst elements with their indices.
::testing::AssertionResult all_close(const std::vector<double>& actual,
                                     const std::vector<double>& reference, double rtol,
                                     double atol);
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& reference, double rtol,
                                     double atol);

// A fresh folder under the build's temporary directory, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Success when `text` contains `part`; the failure shows both.
::testing::AssertionResult contains(const std::string& text, const std::string& part);

// The message of the kiln::Error that `fn` throws; adds a test failure and returns "" when it
// throws nothing.
std::string error_message(const std::function<void()>& fn);

// Sets an environment variable (or unsets it, for nullopt) until the object goes.
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, std::optional<std::string> value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

// Runs a shell command, returns its exit status and (stdout+stderr) output.
int run_command(const std::string& command, std::string* output);

}  // namespace kiln::test
