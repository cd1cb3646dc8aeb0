// Shared test helpers.
#include "test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/rng.h"

namespace kiln::test {

Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, double lo, double hi) {
  Rng rng(seed, 77);
  Tensor t = Tensor::empty(shape, dtype, cpu_device());
  const int64_t n = t.numel();
  if (dtype == DType::f64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = rng.uniform(lo, hi);
  } else {
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.uniform(lo, hi));
  }
  return t;
}

Tensor random_labels(int64_t n, int64_t classes, uint64_t seed) {
  Rng rng(seed, 91);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t& x : v) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return Tensor::from_vector(v, Shape{n});
}

std::vector<double> as_doubles(const Tensor& t) {
  Tensor c = t.is_cpu() ? t : t.to(cpu_device());
  std::vector<double> out(static_cast<size_t>(c.numel()));
  if (c.dtype() == DType::f64) {
    const double* p = c.data<double>();
    std::copy(p, p + c.numel(), out.begin());
  } else if (c.dtype() == DType::f32) {
    const float* p = c.data<float>();
    std::copy(p, p + c.numel(), out.begin());
  } else if (c.dtype() == DType::i32) {
    const int32_t* p = c.data<int32_t>();
    std::copy(p, p + c.numel(), out.begin());
  } else if (c.dtype() == DType::bf16) {
    const bf16_t* p = c.data<bf16_t>();
    for (int64_t i = 0; i < c.numel(); ++i) out[i] = bf16_to_f32(p[i]);
  } else if (c.dtype() == DType::f16) {
    const f16_t* p = c.data<f16_t>();
    for (int64_t i = 0; i < c.numel(); ++i) out[i] = f16_to_f32(p[i]);
  } else {
    ADD_FAILURE() << "as_doubles: unsupported dtype " << dtype_name(c.dtype());
  }
  return out;
}

::testing::AssertionResult all_close(const std::vector<double>& a, const std::vector<double>& r,
                                     double rtol, double atol) {
  if (a.size() != r.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << r.size();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) && std::isfinite(r[i])) {
      return ::testing::AssertionFailure()
             << "element " << i << " is " << a[i] << " (reference " << r[i] << ")";
    }
  }
  std::vector<std::pair<double, size_t>> bad;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::fabs(a[i] - r[i]);
    const double allowed = atol + rtol * std::fabs(r[i]);
    if (err > allowed || (std::isnan(r[i]) != std::isnan(a[i])))
      bad.push_back({err / (allowed + 1e-300), i});
  }
  if (bad.empty()) return ::testing::AssertionSuccess();
  std::sort(bad.rbegin(), bad.rend());
  auto f = ::testing::AssertionFailure();
  f << bad.size() << " of " << a.size() << " elements differ (rtol " << rtol << ", atol " << atol
    << "); worst:";
  for (size_t k = 0; k < std::min<size_t>(5, bad.size()); ++k) {
    size_t i = bad[k].second;
    f << "\n  [" << i << "] actual " << a[i] << " reference " << r[i] << " |diff| "
      << std::fabs(a[i] - r[i]);
  }
  return f;
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& reference, double rtol,
                                     double atol) {
  return all_close(as_doubles(actual), as_doubles(reference), rtol, atol);
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "kiln-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* p = mkdtemp(buf.data());
  if (!p) throw std::runtime_error("mkdtemp failed");
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not found in:\n" << text;
}

std::string error_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.message();
  }
  ADD_FAILURE() << "expected a kiln::Error, nothing was thrown";
  return "";
}

ScopedEnv::ScopedEnv(const std::string& name, std::optional<std::string> value) : name_(name) {
  if (const char* old = std::getenv(name.c_str())) saved_ = old;
  if (value)
    setenv(name.c_str(), value->c_str(), 1);
  else
    unsetenv(name.c_str());
}

ScopedEnv::~ScopedEnv() {
  if (saved_)
    setenv(name_.c_str(), saved_->c_str(), 1);
  else
    unsetenv(name_.c_str());
}

int run_command(const std::string& command, std::string* output) {
  std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::string out;
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace kiln::test
