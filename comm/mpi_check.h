// Internal to the MPI backend (kiln_comm_mpi): KILN_MPI_CHECK, the one check macro for MPI
// calls, and the mapping of Kiln's dtypes and reduce ops onto MPI datatypes and ops, including
// the user-defined ops that reduce the 16-bit floats.
#pragma once

#include <mpi.h>

#include <string>

#include "comm/communicator.h"
#include "core/dtype.h"
#include "core/error.h"

namespace kiln {

// "MPI_ERR_TRUNCATE: message truncated (MPI error 15)".
std::string mpi_error_string(int code);

// MPI has no 16-bit float types: bf16 and f16 travel as MPI_UINT16_T and are reduced by
// user-defined ops that widen each pair to f32 and round the result back (to nearest even).
// Created once MPI is initialised, freed before MPI_Finalize.
void create_mpi_half_ops();
void free_mpi_half_ops();

MPI_Datatype mpi_datatype(DType t);
MPI_Op mpi_op(ReduceOp op, DType t);

}  // namespace kiln

// KILN_MPI_CHECK(MPI_Call(...)): throws kiln::Error carrying the statement, file:line, rank and
// MPI's own error text when the call does not return MPI_SUCCESS.
#define KILN_MPI_CHECK(stmt)                                                                   \
  do {                                                                                         \
    const int kiln_mpi_rc_ = (stmt);                                                           \
    if (kiln_mpi_rc_ != MPI_SUCCESS) [[unlikely]] {                                            \
      ::kiln::throw_error("MPI call failed: " + ::kiln::mpi_error_string(kiln_mpi_rc_), #stmt, \
                          __FILE__, __LINE__);                                                 \
    }                                                                                          \
  } while (0)
