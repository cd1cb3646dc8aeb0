// The Communicator interface (DESIGN decision 4): collectives over tensors, each with an
// asynchronous handle. Backends: "self" (a world of one), "mpi" (host buffers), "nccl" (device
// buffers), picked at run time by make_communicator (comm/backend.h). A collective is issued by
// every rank in the same order; a backend runs them in issue order.
//
// Thread safety: collectives are issued from one thread at a time; Work handles may be waited
// on from the thread that issued them. abort() may be called from any thread (the watchdog).
// The caller keeps a tensor alive and leaves its elements alone until its Work has finished.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace kiln {

enum class ReduceOp { sum, max, min };
const char* reduce_op_name(ReduceOp op);

// What a collective serves, named by the watchdog when it misses its deadline.
struct CollectiveTag {
  const char* what = "collective";  // a static string: "gradients", "control", "parameters"
  int64_t step = -1;                // optimizer step (-1: outside a step)
  int bucket = -1;                  // gradient bucket (-1: not a bucket)
  // Issued to overlap computation (gradient buckets during backward): while no thread waits
  // for it, the backend may trade a little latency for leaving the CPU to computation. Like
  // everything about a collective, it must be the same on every rank.
  bool background = false;
};

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

  // In place: every rank ends with op over all ranks' `t`. 16-bit floats are reduced in f32
  // and rounded back after each pairwise step (so a sum over n ranks rounds n-1 times).
  virtual std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op,
                                                 const CollectiveTag& tag) = 0;
  // in (world * n) -> out (n): rank r receives op over the r-th n-element chunk of every rank.
  // The backend pads nothing: in.numel() must be world * out.numel().
  virtual std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op,
                                                     const CollectiveTag& tag) = 0;
  // in (n) -> out (world * n): out's r-th chunk is rank r's `in`.
  virtual std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out,
                                                 const CollectiveTag& tag) = 0;
  // In place: every rank ends with `root`'s `t`.
  virtual std::unique_ptr<Work> broadcast_async(Tensor& t, int root, const CollectiveTag& tag) = 0;
  virtual std::unique_ptr<Work> barrier_async(const CollectiveTag& tag) = 0;
  // Ends the whole job now with a non-zero exit status (every rank, not just this one): used by
  // the watchdog and when one rank fails alone, so that no other rank waits for it forever.
  // Does not return.
  [[noreturn]] virtual void abort(int exit_code) noexcept = 0;

  // Untagged and blocking forms. A blocking form tells the backend that the caller waits for
  // the collective right away, so the backend may run it on the calling thread (the MPI backend
  // does when nothing else is in flight, saving the hand-off to its comm thread).
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) {
    return all_reduce_async(t, op, CollectiveTag{});
  }
  void all_reduce(Tensor& t, ReduceOp op, const CollectiveTag& tag = {}) {
    CallerWaits scope(*this);
    all_reduce_async(t, op, tag)->wait();
  }
  void broadcast(Tensor& t, int root, const CollectiveTag& tag = {}) {
    CallerWaits scope(*this);
    broadcast_async(t, root, tag)->wait();
  }
  void all_gather(const Tensor& in, Tensor& out, const CollectiveTag& tag = {}) {
    CallerWaits scope(*this);
    all_gather_async(in, out, tag)->wait();
  }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const CollectiveTag& tag = {}) {
    CallerWaits scope(*this);
    reduce_scatter_async(in, out, op, tag)->wait();
  }
  void barrier(const CollectiveTag& tag = {}) {
    CallerWaits scope(*this);
    barrier_async(tag)->wait();
  }

  // Between set_caller_waits(true) and set_caller_waits(false), the issuing thread waits for
  // each collective it issues as soon as it is issued. The blocking forms bracket their
  // collective with it; a backend that gains nothing from knowing ignores it (the default).
  virtual void set_caller_waits(bool /*waits*/) {}

 private:
  struct CallerWaits {
    explicit CallerWaits(Communicator& c) : comm(c) { comm.set_caller_waits(true); }
    ~CallerWaits() { comm.set_caller_waits(false); }
    Communicator& comm;
  };
};

// "all_reduce #12 (gradients, step 40, bucket 3)": how logs and the watchdog name a collective.
std::string describe_collective(const char* op, uint64_t seq, const CollectiveTag& tag);

// A world of one: every collective is a copy or nothing.
std::unique_ptr<Communicator> make_self_communicator();

}  // namespace kiln
