// NCCL collectives on a comm stream, ordered by events, watched by a polling thread.
#include "comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "core/log.h"

#define KILN_NCCL_CHECK(expr)                                                           \
  do {                                                                                  \
    ncclResult_t kiln_r_ = (expr);                                                      \
    if (kiln_r_ != ncclSuccess) [[unlikely]] {                                          \
      ::kiln::throw_error(::fmt::format("NCCL error {}: {}", static_cast<int>(kiln_r_), \
                                        ncclGetErrorString(kiln_r_)),                   \
                          #expr, __FILE__, __LINE__);                                   \
    }                                                                                   \
  } while (0)

namespace kiln {

namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::bf16:
      return ncclBfloat16;
    case DType::f16:
      return ncclFloat16;
    case DType::i32:
      return ncclInt32;
    case DType::u8:
      return ncclUint8;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return ncclSum;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::min:
      return ncclMin;
  }
  return ncclSum;
}

// A collective in flight: its completion event, and what the watchdog says about it.
struct Flight {
  std::unique_ptr<Event> done;
  std::string what;
  Clock::time_point issued;
};

class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<Flight> f, Device& device) : flight_(std::move(f)), device_(device) {}
  bool test() override { return flight_->done->query(); }
  // Stream-ordered: later work on the compute stream runs after the collective.
  void wait() override { flight_->done->wait(device_.compute_stream()); }

 private:
  std::shared_ptr<Flight> flight_;
  Device& device_;
};

// Host tensors take the bootstrap's path; its Work is returned as is.
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, Device& device, double timeout_s)
      : boot_(bootstrap), device_(device), timeout_s_(timeout_s) {
    KILN_CHECK(device.type() == DeviceType::cuda,
               "the NCCL backend needs a CUDA device, the "
               "rank's device is {}",
               device.name());
    ncclUniqueId id{};
    Tensor id_bytes =
        Tensor::zeros(Shape{static_cast<int64_t>(sizeof(id))}, DType::u8, cpu_device());
    if (boot_.rank() == 0) {
      KILN_NCCL_CHECK(ncclGetUniqueId(&id));
      std::memcpy(id_bytes.raw(), &id, sizeof(id));
    }
    boot_.broadcast(id_bytes, 0, CollectiveTag{"nccl unique id"});
    std::memcpy(&id, id_bytes.raw(), sizeof(id));
    KILN_NCCL_CHECK(ncclCommInitRank(&comm_, boot_.world(), id, boot_.rank()));
    stream_ = device.new_stream();
    watchdog_ = std::thread([this] { watch(); });
    KILN_LOG_INFO0("comm",
                   "NCCL {}.{}.{} communicator over {} ranks (comm stream, deadline "
                   "{} s)",
                   NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH, boot_.world(), timeout_s_);
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    try {
      stream_->synchronize();
    } catch (const std::exception& e) {
      KILN_LOG_WARN("comm", "NCCL comm stream at shutdown: {}", e.what());
    }
    if (comm_ && ncclCommDestroy(comm_) != ncclSuccess) {
      KILN_LOG_WARN("comm", "ncclCommDestroy failed");
    }
  }

  std::string backend() const override { return "nccl"; }
  int rank() const override { return boot_.rank(); }
  int world() const override { return boot_.world(); }
  int local_rank() const override { return boot_.local_rank(); }
  int local_world() const override { return boot_.local_world(); }

  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op,
                                         const CollectiveTag& tag) override {
    if (t.is_cpu()) return boot_.all_reduce_async(t, op, tag);
    return issue("all_reduce", tag, [&](cudaStream_t s) {
      return ncclAllReduce(t.raw(), t.raw(), t.numel(), nccl_type(t.dtype()), nccl_op(op), comm_,
                           s);
    });
  }

  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op,
                                             const CollectiveTag& tag) override {
    if (in.is_cpu()) return boot_.reduce_scatter_async(in, out, op, tag);
    KILN_CHECK(in.numel() == out.numel() * world() && in.dtype() == out.dtype(),
               "reduce_scatter: in has {} elements, expected world {} x out {}", in.numel(),
               world(), out.numel());
    return issue("reduce_scatter", tag, [&](cudaStream_t s) {
      return ncclReduceScatter(in.raw(), out.raw(), out.numel(), nccl_type(in.dtype()), nccl_op(op),
                               comm_, s);
    });
  }

  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out,
                                         const CollectiveTag& tag) override {
    if (in.is_cpu()) return boot_.all_gather_async(in, out, tag);
    KILN_CHECK(out.numel() == in.numel() * world() && in.dtype() == out.dtype(),
               "all_gather: out has {} elements, expected world {} x in {}", out.numel(), world(),
               in.numel());
    return issue("all_gather", tag, [&](cudaStream_t s) {
      return ncclAllGather(in.raw(), out.raw(), in.numel(), nccl_type(in.dtype()), comm_, s);
    });
  }

  std::unique_ptr<Work> broadcast_async(Tensor& t, int root, const CollectiveTag& tag) override {
    if (t.is_cpu()) return boot_.broadcast_async(t, root, tag);
    return issue("broadcast", tag, [&](cudaStream_t s) {
      return ncclBroadcast(t.raw(), t.raw(), t.numel(), nccl_type(t.dtype()), root, comm_, s);
    });
  }

  std::unique_ptr<Work> barrier_async(const CollectiveTag& tag) override {
    return boot_.barrier_async(tag);
  }

  // Host tensors' collectives are the bootstrap's.
  void set_caller_waits(bool waits) override { boot_.set_caller_waits(waits); }

  [[noreturn]] void abort(int exit_code) noexcept override {
    if (comm_) ncclCommAbort(comm_);
    boot_.abort(exit_code);
    std::_Exit(exit_code);  // not reached: for compilers that miss the override's [[noreturn]]
  }

 private:
  template <typename Call>
  std::unique_ptr<Work> issue(const char* op, const CollectiveTag& tag, Call&& call) {
    // The comm stream waits for what the compute stream has queued so far (the buffer's
    // producers), then runs the collective and records its completion.
    std::unique_ptr<Event> ready = device_.new_event();
    ready->record(device_.compute_stream());
    ready->wait(*stream_);
    auto flight = std::make_shared<Flight>();
    flight->what = describe_collective(op, seq_++, tag);
    flight->issued = Clock::now();
    flight->done = device_.new_event();
    KILN_NCCL_CHECK(call(static_cast<cudaStream_t>(stream_->native())));
    flight->done->record(*stream_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      flights_.push_back(flight);
    }
    cv_.notify_all();
    return std::make_unique<NcclWork>(flight, device_);
  }

  // Polls the oldest collective in flight (they complete in order on the one comm stream).
  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (flights_.empty()) {
        cv_.wait(lock);
        continue;
      }
      std::shared_ptr<Flight> f = flights_.front();
      lock.unlock();
      bool done = false;
      try {
        done = f->done->query();
      } catch (const std::exception& e) {
        KILN_LOG_ERROR("comm", "NCCL collective {} failed: {}", f->what, e.what());
        abort(3);
      }
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        KILN_LOG_ERROR("comm", "NCCL reports an asynchronous error during {}: {}", f->what,
                       ncclGetErrorString(async));
        abort(3);
      }
      const double waited = std::chrono::duration<double>(Clock::now() - f->issued).count();
      if (!done && waited > timeout_s_) {
        KILN_LOG_ERROR("comm",
                       "watchdog: {} has not finished after {:.1f} s (comm.timeout_s = "
                       "{}); aborting the NCCL communicator and the job",
                       f->what, waited, timeout_s_);
        abort(3);
      }
      lock.lock();
      if (done) {
        if (!flights_.empty() && flights_.front() == f) flights_.pop_front();
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
    }
  }

  Communicator& boot_;
  Device& device_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  std::unique_ptr<Stream> stream_;
  uint64_t seq_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Flight>> flights_;
  bool stop_ = false;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, Device& device,
                                                     double timeout_s) {
  return std::make_unique<NcclCommunicator>(bootstrap, device, timeout_s);
}

}  // namespace kiln
