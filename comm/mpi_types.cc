// Kiln dtypes and reduce ops as MPI datatypes and ops; the user-defined ops for bf16 and f16.
#include <algorithm>

#include "comm/mpi_check.h"

namespace kiln {

namespace {

// [op][0 = bf16, 1 = f16]; MPI_OP_NULL until create_mpi_half_ops().
MPI_Op g_half_ops[3][2] = {
    {MPI_OP_NULL, MPI_OP_NULL}, {MPI_OP_NULL, MPI_OP_NULL}, {MPI_OP_NULL, MPI_OP_NULL}};

struct Bf16 {
  static float load(uint16_t b) { return bf16_to_f32(bf16_t{b}); }
  static uint16_t store(float f) { return f32_to_bf16(f).bits; }
};
struct F16 {
  static float load(uint16_t b) { return f16_to_f32(f16_t{b}); }
  static uint16_t store(float f) { return f32_to_f16(f).bits; }
};
struct Sum {
  static float apply(float a, float b) { return a + b; }
};
struct Max {
  static float apply(float a, float b) { return std::max(a, b); }
};
struct Min {
  static float apply(float a, float b) { return std::min(a, b); }
};

// The MPI_User_function signature: inout[i] = in[i] op inout[i].
template <typename Half, typename Op>
void half_reduce(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = Half::store(Op::apply(Half::load(a[i]), Half::load(b[i])));
}

int op_index(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return 0;
    case ReduceOp::max:
      return 1;
    case ReduceOp::min:
      return 2;
  }
  return 0;
}

}  // namespace

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return fmt::format("{} (MPI error {})", std::string(text, static_cast<size_t>(len)), code);
}

void create_mpi_half_ops() {
  KILN_MPI_CHECK(MPI_Op_create(&half_reduce<Bf16, Sum>, 1, &g_half_ops[0][0]));
  KILN_MPI_CHECK(MPI_Op_create(&half_reduce<F16, Sum>, 1, &g_half_ops[0][1]));
  KILN_MPI_CHECK(MPI_Op_create(&half_reduce<Bf16, Max>, 1, &g_half_ops[1][0]));
  KILN_MPI_CHECK(MPI_Op_create(&half_reduce<F16, Max>, 1, &g_half_ops[1][1]));
  KILN_MPI_CHECK(MPI_Op_create(&half_reduce<Bf16, Min>, 1, &g_half_ops[2][0]));
  KILN_MPI_CHECK(MPI_Op_create(&half_reduce<F16, Min>, 1, &g_half_ops[2][1]));
}

void free_mpi_half_ops() {
  for (auto& row : g_half_ops) {
    for (MPI_Op& op : row) {
      if (op != MPI_OP_NULL) MPI_Op_free(&op);
    }
  }
}

MPI_Datatype mpi_datatype(DType t) {
  switch (t) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::u8:
      return MPI_UINT8_T;
    case DType::bf16:
    case DType::f16:
      return MPI_UINT16_T;
  }
  KILN_FAIL("dtype {} has no MPI datatype", dtype_name(t));
}

MPI_Op mpi_op(ReduceOp op, DType t) {
  if (t == DType::bf16 || t == DType::f16) {
    MPI_Op o = g_half_ops[op_index(op)][t == DType::bf16 ? 0 : 1];
    KILN_CHECK(o != MPI_OP_NULL, "the MPI ops for 16-bit floats were not created");
    return o;
  }
  switch (op) {
    case ReduceOp::sum:
      return MPI_SUM;
    case ReduceOp::max:
      return MPI_MAX;
    case ReduceOp::min:
      return MPI_MIN;
  }
  return MPI_SUM;
}

}  // namespace kiln
