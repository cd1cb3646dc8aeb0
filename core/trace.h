// The tracer: a timeline of what each thread of this rank did (spans with a start and a
// duration, and enqueue-to-completion pairs), kept as Chrome trace events in per-thread buffers,
// and the same spans as NVTX ranges for GPU profilers (KILN_NVTX=1, CUDA builds). Off by
// default; while off, an instrumented scope costs one relaxed load and one branch.
//
// Thread safety: any thread may record; each appends to its own buffer without locks and
// publishes events one by one, so snapshot() may read while others record. start() and stop()
// may be called from any thread; start() drops what was recorded before.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace kiln::trace {

enum Mode : uint32_t { kRecord = 1u, kNvtx = 2u };

namespace detail {
extern std::atomic<uint32_t> g_mode;
void span_begin_nvtx(const char* name);
void span_end_nvtx();
}  // namespace detail

inline uint32_t mode() { return detail::g_mode.load(std::memory_order_relaxed); }
inline bool recording() { return (mode() & kRecord) != 0; }

// Monotonic clock of this host, in nanoseconds (the clock every event is stamped with).
int64_t now_ns();
// Test hook (KILN_DEBUG_TRACE_SKEW_US): shifts now_ns() by `ns`, so that ranks on one host can
// stand in for hosts whose clocks disagree.
void set_clock_skew_ns(int64_t ns);

// An integer argument shown with an event: step, bucket, sequence number, bytes. `key` is a
// string that outlives the tracer (a literal).
struct Arg {
  const char* key;
  int64_t value;
};
constexpr int kMaxArgs = 5;

// One Chrome trace event. `name` and `cat` outlive the tracer (literals, or intern()).
struct Event {
  const char* name;
  const char* cat;
  int64_t ts_ns;
  int64_t dur_ns;  // 'X' only
  uint64_t id;     // 'b'/'e' only: pairs the two ends
  char ph;         // 'X' complete span, 'b'/'e' async begin/end, 'i' instant
  uint8_t nargs;
  Arg args[kMaxArgs];
};

// Appends an event to this thread's buffer (while recording; dropped and counted when the
// buffer is full: KILN_TRACE_MAX_EVENTS).
void record(const Event& e);
void complete(const char* name, const char* cat, int64_t ts_ns, int64_t dur_ns,
              std::initializer_list<Arg> args = {});
// A span that starts on one thread and ends on another (a collective from enqueue to
// completion): a 'b' and an 'e' event with the same id.
void async_span(const char* name, const char* cat, uint64_t id, int64_t begin_ns, int64_t end_ns,
                std::initializer_list<Arg> args = {});

// A scope recorded as one 'X' event (and one NVTX range).
class Span {
 public:
  Span(const char* name, const char* cat) : mode_(mode()) {
    if (mode_ != 0) [[unlikely]]
      begin(name, cat);
  }
  ~Span() {
    if (mode_ != 0) [[unlikely]]
      end();
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  // Adds an argument (ignored while off, and beyond kMaxArgs).
  Span& arg(const char* key, int64_t value) {
    if ((mode_ & kRecord) != 0 && nargs_ < kMaxArgs) args_[nargs_++] = Arg{key, value};
    return *this;
  }

 private:
  void begin(const char* name, const char* cat);
  void end();

  uint32_t mode_;
  uint8_t nargs_ = 0;
  const char* name_;
  const char* cat_;
  int64_t ts_;
  Arg args_[kMaxArgs];  // left uninitialised: filling them would cost while tracing is off
};

// Names this thread's row in the trace ("main", "comm", "checkpoint writer"). Threads with the
// well-known names get fixed thread ids, so that rows line up across ranks.
void set_thread_name(const std::string& name);
// A copy of `s` that lives as long as the process: for names built at run time (layers).
const char* intern(const std::string& s);

// Drops what was recorded and starts recording.
void start();
// Stops recording; what was recorded stays readable.
void stop();
// NVTX ranges around spans; returns false (and changes nothing) in a build without CUDA.
bool set_nvtx(bool on);
bool nvtx_available();

// What one thread recorded since start().
struct ThreadEvents {
  int tid = 0;
  std::string name;
  std::vector<Event> events;
  int64_t dropped = 0;
};
std::vector<ThreadEvents> snapshot();

// The cost of one recorded span (two clock reads and an append), measured on this thread
// into a scratch buffer.
double measure_span_cost_ns();

}  // namespace kiln::trace
