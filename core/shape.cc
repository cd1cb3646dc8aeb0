// Shape construction, element count and printing.
#include "core/shape.h"

#include "core/error.h"

namespace kiln {

Shape::Shape(std::initializer_list<int64_t> dims) {
  KILN_CHECK(dims.size() <= kMaxDims, "shape has {} dims, at most {} are supported", dims.size(),
             kMaxDims);
  for (int64_t d : dims) {
    KILN_CHECK(d >= 0, "negative dimension {} in a shape", d);
    dims_[ndim_++] = d;
  }
}

Shape::Shape(const std::vector<int64_t>& dims) {
  KILN_CHECK(dims.size() <= kMaxDims, "shape has {} dims, at most {} are supported", dims.size(),
             kMaxDims);
  for (int64_t d : dims) {
    KILN_CHECK(d >= 0, "negative dimension {} in a shape", d);
    dims_[ndim_++] = d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[i];
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + ")";
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; ++i) {
    if (dims_[i] != o.dims_[i]) return false;
  }
  return true;
}

}  // namespace kiln
