// The Communicator interface (DESIGN decision 4): collectives over tensors, each with an
// asynchronous handle. Backends: "self" (a world of one), "mpi" (host buffers), "nccl" (device
// buffers), picked at run time. A collective is issued by every rank in the same order.
//
// Thread safety: collectives are issued from one thread at a time; Work handles may be waited
// on from the thread that issued them. abort() may be called from any thread (the watchdog).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace kiln {

enum class ReduceOp { sum, max, min };
const char* reduce_op_name(ReduceOp op);

// A collective in flight.
class Work {
 public:
  virtual ~Work() = default;
  // True once the collective has finished on this rank (never blocks).
  virtual bool test() = 0;
  // Blocks until finished; throws kiln::Error if the communicator failed or was aborted.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string backend() const = 0;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual int local_rank() const = 0;   // rank among the ranks on this node
  virtual int local_world() const = 0;  // ranks on this node

  // In place: every rank ends with op over all ranks' `t`.
  virtual std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) = 0;
  // in (world * n) -> out (n): rank r receives op over the r-th n-element chunk of every rank.
  // `in` may not be evenly divisible: the backend pads nothing; chunks are `out.numel()` long
  // and in.numel() must be world * out.numel().
  virtual std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out,
                                                     ReduceOp op) = 0;
  // in (n) -> out (world * n): out's r-th chunk is rank r's `in`.
  virtual std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out) = 0;
  // In place: every rank ends with `root`'s `t`.
  virtual std::unique_ptr<Work> broadcast_async(Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Tears the communicator down so that blocked collectives return with an error (watchdog).
  virtual void abort() noexcept = 0;

  // Blocking forms.
  void all_reduce(Tensor& t, ReduceOp op) { all_reduce_async(t, op)->wait(); }
  void broadcast(Tensor& t, int root) { broadcast_async(t, root)->wait(); }
  void all_gather(const Tensor& in, Tensor& out) { all_gather_async(in, out)->wait(); }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
    reduce_scatter_async(in, out, op)->wait();
  }
};

// A world of one: every collective is a copy or nothing.
std::unique_ptr<Communicator> make_self_communicator();

}  // namespace kiln
