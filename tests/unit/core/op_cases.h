// The op cases every device's kernels are tested on (DESIGN decision 2). A case builds its
// inputs on the host from (dims, dtype, seed), runs one Ops method on any device, and has a
// separate plain-loop reference in double. ops_test.cc runs every case on every device: the CPU
// against the plain-loop reference, every other device (in f32 and 16-bit) against the CPU's
// kernels run in f64 on the same input values.
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
  // The dtypes of the CPU runs against the reference (make_inputs is called with one of them).
  std::vector<DType> dtypes = {DType::f32, DType::f64};
  // Device runs only: whether the op also runs with 16-bit (bf16, f16) operands. Not for
  // optimizer updates (f32 master weights and state) nor casts (which name their own dtypes).
  bool half = true;
  // Device runs only: inputs that stay f32 when the operands are 16-bit in mixed precision (the
  // parameter gradients an op accumulates into, matmul's c). The plain 16-bit run converts them
  // too; the mixed one keeps them f32.
  std::vector<size_t> f32_when_mixed;
  // Device runs only: f32 runs on tensor cores with TF32 inputs on a GPU (cuBLASLt, cuDNN), so
  // they are held to the tf32 tolerance of ops_test.cc.
  bool tf32 = false;
  // Device runs only: whether the op also runs on tensors that are views one element into a
  // larger allocation, so that no pointer is 16-byte aligned and the kernels' scalar paths run
  // (Kiln's layers pass views of flat buffers). Not for the convolutions: cuDNN gets whole
  // activations and 64-byte aligned parameter views in Kiln's models.
  bool offset_views = true;
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

// Device 0 of `type`, opened once per process (the CPU is always there); null, with the reason
// in *why, when this build or this machine has none. Tests skip with that reason.
Device* test_device(DeviceType type, std::string* why);

// Compares every output of a run with the same output of a reference run (a plain loop, or
// the CPU): exact ones exactly, the others with all_close (NaN/Inf first) at `tol`, where atol
// is taken relative to the output's largest reference magnitude (at least 1), so long sums are
// judged against the size of what they sum to. `what` names the dtype or variant in messages.
void expect_outputs_match(const OpOutputs& got, const OpOutputs& want, const Tolerance& tol,
                          const std::string& what);

// While one is alive, on() and poisoned() on this thread place tensors one element into a
// larger allocation (the "f32_offset" runs of ops_test.cc; their reference runs outside it).
class ScopedOffsetViews {
 public:
  ScopedOffsetViews();
  ~ScopedOffsetViews();
  ScopedOffsetViews(const ScopedOffsetViews&) = delete;
  ScopedOffsetViews& operator=(const ScopedOffsetViews&) = delete;

 private:
  bool previous_;
};

// ---- helpers for writing cases --------------------------------------------------------------

// A copy of a host tensor on `device` (at an offset under ScopedOffsetViews).
Tensor on(Device& device, const Tensor& host);
// A tensor on `device` filled with NaN (float types) or 0xff bytes (integer types).
Tensor poisoned(Device& device, const Shape& shape, DType dtype);
// Reads a tensor (of any dtype, 16-bit floats included) back as an output.
OpOutput read(const std::string& name, const Tensor& t, bool exact = false);
// Values of a host tensor as doubles (f32, f64, bf16, f16, i32, u8).
std::vector<double> values(const Tensor& host);
// A host tensor of `dtype` holding `v` (rounded to nearest even for 16-bit floats).
Tensor from_doubles(const std::vector<double>& v, const Shape& shape, DType dtype);
// A host u8 tensor of random 0/1 values, from (seed).
Tensor random_mask(const Shape& shape, uint64_t seed);

// Case groups, one per file.
void add_dense_cases(std::vector<OpCase>& out);        // op_cases_dense.cc: matmul, linear, conv
void add_pointwise_cases(std::vector<OpCase>& out);    // op_cases_pointwise.cc: pool, activations,
                                                       // dropout, softmax cross-entropy
void add_flat_cases(std::vector<OpCase>& out);         // op_cases_flat.cc: optimizers, reductions,
                                                       // casts
void add_transformer_cases(std::vector<OpCase>& out);  // op_cases_transformer.cc: embedding,
                                                       // layernorm, attention, add

}  // namespace kiln::test
