// The tracer's per-thread buffers. Each thread appends to its own chunked buffer (chunks are
// never moved, so a reader can walk them while the owner appends) and publishes each event with
// a release store of its count. start() bumps a generation instead of touching other threads'
// buffers: an owner that sees a new generation empties its own buffer before appending.
#include "core/trace.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include "core/env.h"

namespace kiln::trace {

namespace detail {
std::atomic<uint32_t> g_mode{0};
}  // namespace detail

namespace {

constexpr int64_t kChunk = 4096;

struct ThreadBuffer {
  explicit ThreadBuffer(int64_t capacity)
      : capacity(capacity), chunks(static_cast<size_t>((capacity + kChunk - 1) / kChunk)) {}
  ~ThreadBuffer() {
    for (auto& c : chunks) delete[] c.load();
  }
  const int64_t capacity;
  std::vector<std::atomic<Event*>> chunks;  // allocated on first use, by the owner only
  std::atomic<int64_t> count{0};            // published events
  std::atomic<int64_t> dropped{0};
  std::atomic<uint64_t> generation{0};
  int tid = 0;       // guarded by Registry::mu
  std::string name;  // guarded by Registry::mu
};

// Buffers outlive their threads (a comm thread may end before its events are written), and the
// registry outlives everything: it is never destroyed, so a thread still recording while the
// process exits never touches a freed buffer.
struct Registry {
  std::mutex mu;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers;
  std::deque<std::string> interned;
  std::atomic<uint64_t> generation{1};
  int next_tid = 16;
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

// Fixed rows for the threads every rank has.
int well_known_tid(const std::string& name) {
  if (name == "main") return 1;
  if (name == "comm") return 2;
  if (name == "checkpoint snapshot") return 3;
  if (name == "checkpoint writer") return 4;
  return 0;
}

thread_local ThreadBuffer* t_buffer = nullptr;

ThreadBuffer& this_thread() {
  if (t_buffer == nullptr) {
    static const int64_t capacity =
        std::max<int64_t>(kChunk, env::get_int("KILN_TRACE_MAX_EVENTS"));
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    r.buffers.push_back(std::make_unique<ThreadBuffer>(capacity));
    t_buffer = r.buffers.back().get();
    t_buffer->tid = r.next_tid++;
    t_buffer->name = "thread " + std::to_string(t_buffer->tid);
  }
  return *t_buffer;
}

void append(ThreadBuffer& b, const Event& e, uint64_t generation) {
  if (b.generation.load(std::memory_order_relaxed) != generation) {
    // Only the owner writes count: empty first, then announce the generation (readers check it
    // before they read count).
    b.count.store(0, std::memory_order_relaxed);
    b.dropped.store(0, std::memory_order_relaxed);
    b.generation.store(generation, std::memory_order_release);
  }
  const int64_t i = b.count.load(std::memory_order_relaxed);
  if (i >= b.capacity) {
    b.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::atomic<Event*>& slot = b.chunks[static_cast<size_t>(i / kChunk)];
  Event* chunk = slot.load(std::memory_order_relaxed);
  if (chunk == nullptr) {
    chunk = new Event[kChunk];
    slot.store(chunk, std::memory_order_release);
  }
  chunk[i % kChunk] = e;
  b.count.store(i + 1, std::memory_order_release);
}

Event make_event(const char* name, const char* cat, char ph, int64_t ts, int64_t dur, uint64_t id,
                 std::initializer_list<Arg> args) {
  Event e;
  e.name = name;
  e.cat = cat;
  e.ph = ph;
  e.ts_ns = ts;
  e.dur_ns = dur;
  e.id = id;
  e.nargs = 0;
  for (const Arg& a : args) {
    if (e.nargs == kMaxArgs) break;
    e.args[e.nargs++] = a;
  }
  return e;
}

}  // namespace

namespace {
std::atomic<int64_t> g_skew_ns{0};
}  // namespace

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
             .count() +
         g_skew_ns.load(std::memory_order_relaxed);
}

void set_clock_skew_ns(int64_t ns) { g_skew_ns.store(ns, std::memory_order_relaxed); }

void record(const Event& e) {
  if (!recording()) return;
  append(this_thread(), e, registry().generation.load(std::memory_order_acquire));
}

void complete(const char* name, const char* cat, int64_t ts_ns, int64_t dur_ns,
              std::initializer_list<Arg> args) {
  if (!recording()) return;
  record(make_event(name, cat, 'X', ts_ns, dur_ns, 0, args));
}

void async_span(const char* name, const char* cat, uint64_t id, int64_t begin_ns, int64_t end_ns,
                std::initializer_list<Arg> args) {
  if (!recording()) return;
  record(make_event(name, cat, 'b', begin_ns, 0, id, args));
  record(make_event(name, cat, 'e', end_ns, 0, id, {}));
}

void Span::begin(const char* name, const char* cat) {
  name_ = name;
  cat_ = cat;
  if (mode_ & kNvtx) detail::span_begin_nvtx(name);
  ts_ = now_ns();
}

void Span::end() {
  const int64_t t = now_ns();
  if (mode_ & kNvtx) detail::span_end_nvtx();
  // A span that outlives the window is dropped rather than written into a closed timeline.
  if ((mode_ & kRecord) == 0 || !recording()) return;
  Event e;
  e.name = name_;
  e.cat = cat_;
  e.ph = 'X';
  e.ts_ns = ts_;
  e.dur_ns = t - ts_;
  e.id = 0;
  e.nargs = nargs_;
  for (int i = 0; i < nargs_; ++i) e.args[i] = args_[i];
  append(this_thread(), e, registry().generation.load(std::memory_order_acquire));
}

void set_thread_name(const std::string& name) {
  ThreadBuffer& b = this_thread();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  b.name = name;
  const int tid = well_known_tid(name);
  if (tid == 0) return;
  for (const auto& other : r.buffers) {
    if (other.get() != &b && other->tid == tid) return;  // taken (a second comm thread)
  }
  b.tid = tid;
}

const char* intern(const std::string& s) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const std::string& x : r.interned) {
    if (x == s) return x.c_str();
  }
  r.interned.push_back(s);  // a deque never moves its elements
  return r.interned.back().c_str();
}

void start() {
  registry().generation.fetch_add(1, std::memory_order_acq_rel);
  detail::g_mode.fetch_or(kRecord, std::memory_order_release);
}

void stop() {
  detail::g_mode.fetch_and(~static_cast<uint32_t>(kRecord), std::memory_order_release);
}

bool set_nvtx(bool on) {
  if (!nvtx_available()) return false;
  if (on) {
    detail::g_mode.fetch_or(kNvtx, std::memory_order_release);
  } else {
    detail::g_mode.fetch_and(~static_cast<uint32_t>(kNvtx), std::memory_order_release);
  }
  return true;
}

std::vector<ThreadEvents> snapshot() {
  Registry& r = registry();
  const uint64_t generation = r.generation.load(std::memory_order_acquire);
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<ThreadEvents> out;
  for (const auto& b : r.buffers) {
    if (b->generation.load(std::memory_order_acquire) != generation) continue;
    const int64_t n = b->count.load(std::memory_order_acquire);
    if (n == 0) continue;
    ThreadEvents t;
    t.tid = b->tid;
    t.name = b->name;
    t.dropped = b->dropped.load(std::memory_order_relaxed);
    t.events.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const Event* chunk =
          b->chunks[static_cast<size_t>(i / kChunk)].load(std::memory_order_acquire);
      t.events.push_back(chunk[i % kChunk]);
    }
    out.push_back(std::move(t));
  }
  return out;
}

double measure_span_cost_ns() {
  // The same work as a recorded Span: two clock reads and an append with two arguments. The
  // fastest of several batches: on a busy machine a batch that was preempted says nothing
  // about the cost of recording.
  ThreadBuffer scratch(kChunk);
  constexpr int kBatches = 20, kSpans = 200;
  double best = 1e300;
  for (int b = 0; b < kBatches; ++b) {
    const int64_t t0 = now_ns();
    for (int i = 0; i < kSpans; ++i) {
      const int64_t ts = now_ns();
      Event e = make_event("calibration", "trace", 'X', ts, 0, 0, {{"step", i}, {"bucket", b}});
      e.dur_ns = now_ns() - ts;
      append(scratch, e, static_cast<uint64_t>(b + 1));  // a new generation empties it
    }
    best = std::min(best, static_cast<double>(now_ns() - t0) / kSpans);
  }
  return best;
}

}  // namespace kiln::trace
