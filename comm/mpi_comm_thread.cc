// The MPI backend's comm thread: queue, completion handles, and adaptive progress.
#include "comm/mpi_comm_thread.h"

#include "comm/mpi_check.h"
#include "core/trace.h"

namespace kiln {

namespace {

// Completion of one queued collective, shared by the comm thread and its Work handle.
struct WorkState {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> done{false};
  std::string error;  // set when the collective failed
};

class MpiWork final : public Work {
 public:
  MpiWork(std::shared_ptr<WorkState> s, CommThread::Waiters* waiters)
      : s_(std::move(s)), waiters_(waiters) {}
  bool test() override { return s_->done.load(std::memory_order_acquire); }
  void wait() override {
    if (!test()) {
      // Tell the comm thread that someone now waits, so it stops sparing the CPU.
      {
        std::lock_guard<std::mutex> lock(waiters_->mu);
        waiters_->count.fetch_add(1, std::memory_order_relaxed);
      }
      waiters_->arrived.notify_all();
      {
        std::unique_lock<std::mutex> lock(s_->mu);
        s_->cv.wait(lock, [&] { return s_->done.load(std::memory_order_acquire); });
      }
      waiters_->count.fetch_sub(1, std::memory_order_relaxed);
    }
    KILN_CHECK(s_->error.empty(), "{}", s_->error);
  }

 private:
  std::shared_ptr<WorkState> s_;
  CommThread::Waiters* waiters_;
};

// A collective that has already finished (run on the calling thread).
class DoneWork final : public Work {
 public:
  explicit DoneWork(std::string error) : error_(std::move(error)) {}
  bool test() override { return true; }
  void wait() override { KILN_CHECK(error_.empty(), "{}", error_); }

 private:
  std::string error_;
};

}  // namespace

struct CommThread::Task {
  std::function<void()> run;
  std::shared_ptr<WorkState> state;
  const char* op = "";
  uint64_t seq = 0;
  CollectiveTag tag;
  int64_t bytes = 0;
  int64_t enqueued_ns = 0;  // set while tracing
};

namespace {

// Runs one task, leaving its spans in the trace while it records.
void run_traced(const std::function<void()>& run, const char* op, uint64_t seq,
                const CollectiveTag& tag, int64_t bytes, int64_t enqueued_ns) {
  const auto seq_arg = static_cast<int64_t>(seq);
  const int64_t step = tag.step >= 0 ? tag.step + 1 : -1;  // counted from 1, as in the logs
  {
    trace::Span span(op, tag.what);
    span.arg("seq", seq_arg).arg("step", step).arg("bucket", tag.bucket).arg("bytes", bytes);
    run();
  }
  if (enqueued_ns != 0 && trace::recording()) {
    trace::async_span(op, tag.what, seq, enqueued_ns, trace::now_ns(),
                      {{"seq", seq_arg}, {"step", step}, {"bucket", tag.bucket}});
  }
}

}  // namespace

CommThread::CommThread(double timeout_s, Watchdog::Expired on_expire,
                       std::chrono::microseconds poll)
    : poll_(poll), watchdog_(std::make_unique<Watchdog>(timeout_s, std::move(on_expire))) {
  thread_ = std::thread([this] { loop(); });
}

CommThread::~CommThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  watchdog_.reset();
}

std::unique_ptr<Work> CommThread::enqueue(const char* op, const CollectiveTag& tag, int64_t bytes,
                                          std::function<void()> run) {
  auto task = std::make_unique<Task>();
  task->run = std::move(run);
  task->state = std::make_shared<WorkState>();
  task->op = op;
  task->tag = tag;
  task->bytes = bytes;
  if (trace::recording()) task->enqueued_ns = trace::now_ns();
  auto work = std::make_unique<MpiWork>(task->state, &waiters_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    task->seq = next_seq_++;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return work;
}

std::unique_ptr<Work> CommThread::run_here(const char* op, const CollectiveTag& tag, int64_t bytes,
                                           std::function<void()> run) {
  bool idle = false;
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle = !busy_ && queue_.empty();
    if (idle) {
      busy_ = true;  // the comm thread starts nothing new until this one is done
      seq = next_seq_++;
    }
  }
  // Behind something in flight: the comm thread keeps the order.
  if (!idle) return enqueue(op, tag, bytes, std::move(run));
  const int64_t enqueued_ns = trace::recording() ? trace::now_ns() : 0;
  std::string error = run_one(run, op, seq, tag, bytes, enqueued_ns);
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_ = false;
  }
  return std::make_unique<DoneWork>(std::move(error));
}

void CommThread::mpi(bool background, const std::function<int()>& blocking,
                     const std::function<int(MPI_Request*)>& start) {
  if (!background) {
    KILN_MPI_CHECK(blocking());
    return;
  }
  MPI_Request req = MPI_REQUEST_NULL;
  KILN_MPI_CHECK(start(&req));
  for (;;) {
    int done = 0;
    KILN_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (done) return;
    std::unique_lock<std::mutex> lock(waiters_.mu);
    // Sleeps one poll period, or until a thread starts waiting for this collective.
    if (waiters_.arrived.wait_for(lock, poll_, [&] { return waiters_.count.load() > 0; })) {
      lock.unlock();
      KILN_MPI_CHECK(MPI_Wait(&req, MPI_STATUS_IGNORE));
      return;
    }
  }
}

std::string CommThread::run_one(const std::function<void()>& run, const char* op, uint64_t seq,
                                const CollectiveTag& tag, int64_t bytes, int64_t enqueued_ns) {
  watchdog_->arm(describe_collective(op, seq, tag));
  std::string error;
  try {
    // Recorded before the Work completes, so that a rank whose wait() returned at the end of
    // a trace window finds the collective's events already in the buffer.
    run_traced(run, op, seq, tag, bytes, enqueued_ns);
  } catch (const std::exception& e) {
    error = fmt::format("{} failed: {}", describe_collective(op, seq, tag), e.what());
  }
  watchdog_->disarm();
  return error;
}

void CommThread::loop() {
  trace::set_thread_name("comm");
  for (;;) {
    std::unique_ptr<Task> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Not while run_here() runs a collective on its caller's thread.
      cv_.wait(lock, [&] { return !busy_ && (stop_ || !queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything issued has run
      task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    std::string error =
        run_one(task->run, task->op, task->seq, task->tag, task->bytes, task->enqueued_ns);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
    }
    {
      std::lock_guard<std::mutex> lock(task->state->mu);
      task->state->error = std::move(error);
      task->state->done.store(true, std::memory_order_release);
    }
    task->state->cv.notify_all();
  }
}

}  // namespace kiln
