// The op cases every device's kernels are tested on (DESIGN decision 2). A case builds its
// inputs on the host from (dims, dtype, seed), runs one Ops method on any device, and has a
// separate plain-loop reference in double. ops_test.cc runs every case on the CPU against its
// reference; a backend's test runs the same cases on its device and compares with the CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/ops.h"
#include "core/tensor.h"

namespace kiln::test {

// A case's size parameters; what they mean is the case's `dims_meaning`.
using Dims = std::vector<int64_t>;

struct Tolerance {
  double rtol = 0;
  double atol = 0;
};

// One output of a case, read back to the host.
struct OpOutput {
  std::string name;
  std::vector<double> values;
  bool exact = false;  // indices, masks, counts: must match exactly
};
using OpOutputs = std::vector<OpOutput>;

struct OpCase {
  std::string name;          // "matmul_nt", "conv2d_backward", ...
  std::string dims_meaning;  // "M, K, N"
  std::vector<Dims> shapes;
  std::vector<DType> dtypes = {DType::f32, DType::f64};
  // Host (CPU) input tensors of one instance; the same for the run and the reference.
  std::function<std::vector<Tensor>(const Dims&, DType, uint64_t seed)> make_inputs;
  // Copies the inputs to `device`, poisons the outputs (NaN, so an op that does not write them
  // fails) or prefills those the op accumulates into, calls `ops`, reads the outputs back.
  std::function<OpOutputs(Ops& ops, Device& device, const Dims&, const std::vector<Tensor>&)> run;
  // The same outputs from plain loops in double.
  std::function<OpOutputs(const Dims&, const std::vector<Tensor>&)> reference;
  // f32 kernels against a double reference: rounding of float sums, far under 1e-4 relative.
  Tolerance f32{1e-5, 1e-6};
  // f64 kernels: only the order of summation differs from the reference.
  Tolerance f64{1e-12, 1e-12};
  Tolerance tolerance(DType t) const { return t == DType::f64 ? f64 : f32; }
};

// Every case, built once.
const std::vector<OpCase>& op_cases();

// ---- helpers for writing cases --------------------------------------------------------------

// A copy of a host tensor on `device`.
Tensor on(Device& device, const Tensor& host);
// A tensor on `device` filled with NaN (float types) or 0xff bytes (integer types).
Tensor poisoned(Device& device, const Shape& shape, DType dtype);
// Reads a tensor back as an output.
OpOutput read(const std::string& name, const Tensor& t, bool exact = false);
// Values of a host tensor as doubles (f32, f64, i32, u8).
std::vector<double> values(const Tensor& host);
// A host u8 tensor of random 0/1 values, from (seed).
Tensor random_mask(const Shape& shape, uint64_t seed);

// Case groups, one per file.
void add_dense_cases(std::vector<OpCase>& out);      // op_cases_dense.cc: matmul, linear, conv
void add_pointwise_cases(std::vector<OpCase>& out);  // op_cases_pointwise.cc: pool, activations,
                                                     // dropout, softmax cross-entropy
void add_flat_cases(std::vector<OpCase>& out);       // op_cases_flat.cc: optimizers, reductions

}  // namespace kiln::test
