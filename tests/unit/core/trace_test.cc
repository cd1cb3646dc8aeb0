// The tracer: nothing is recorded while off; spans land in their thread's buffer with their
// arguments and nesting; start() drops the previous window; a span that outlives stop() is
// dropped; a reader sees only whole events while a thread records; the Chrome JSON has the
// metadata rows, microsecond times and escaped names.
#include "core/trace.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/trace_file.h"

namespace kiln::test {
namespace {

using trace::Span;

const trace::ThreadEvents* find_thread(const std::vector<trace::ThreadEvents>& ts,
                                       const std::string& name) {
  for (const auto& t : ts) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

TEST(Trace, OffRecordsNothing) {
  trace::start();
  trace::stop();
  EXPECT_FALSE(trace::recording());
  {
    Span s("off", "test");
    s.arg("step", 1);
  }
  trace::complete("off", "test", 1, 2);
  EXPECT_TRUE(trace::snapshot().empty());
}

TEST(Trace, SpansLandInTheirThreadsWithArgsAndNesting) {
  trace::set_thread_name("main");
  trace::start();
  {
    Span outer("outer", "test");
    outer.arg("step", 7);
    for (int i = 0; i < 3; ++i) {
      Span inner("inner", "test");
      inner.arg("i", i).arg("bytes", 1000 + i);
    }
  }
  std::thread worker([] {
    trace::set_thread_name("comm");
    for (int i = 0; i < 5; ++i) Span s("work", "comm");
    trace::async_span("queued", "comm", 42, 100, 200, {{"seq", 42}});
  });
  worker.join();
  trace::stop();
  const auto threads = trace::snapshot();
  ASSERT_EQ(threads.size(), 2u);
  const trace::ThreadEvents* main = find_thread(threads, "main");
  const trace::ThreadEvents* comm = find_thread(threads, "comm");
  ASSERT_TRUE(main && comm);
  EXPECT_EQ(main->tid, 1);  // the fixed rows of the well-known threads
  EXPECT_EQ(comm->tid, 2);

  // Inner spans end (and are appended) first; the outer one contains them all.
  ASSERT_EQ(main->events.size(), 4u);
  const trace::Event& outer = main->events[3];
  EXPECT_STREQ(outer.name, "outer");
  EXPECT_EQ(outer.ph, 'X');
  ASSERT_EQ(outer.nargs, 1);
  EXPECT_STREQ(outer.args[0].key, "step");
  EXPECT_EQ(outer.args[0].value, 7);
  for (int i = 0; i < 3; ++i) {
    const trace::Event& e = main->events[static_cast<size_t>(i)];
    EXPECT_STREQ(e.name, "inner");
    ASSERT_EQ(e.nargs, 2);
    EXPECT_EQ(e.args[0].value, i);
    EXPECT_EQ(e.args[1].value, 1000 + i);
    EXPECT_GE(e.ts_ns, outer.ts_ns);
    EXPECT_LE(e.ts_ns + e.dur_ns, outer.ts_ns + outer.dur_ns);
    if (i > 0) {
      EXPECT_GE(e.ts_ns, main->events[static_cast<size_t>(i - 1)].ts_ns);
    }
  }

  ASSERT_EQ(comm->events.size(), 7u);  // 5 spans, then the async pair
  EXPECT_EQ(comm->events[5].ph, 'b');
  EXPECT_EQ(comm->events[5].ts_ns, 100);
  EXPECT_EQ(comm->events[5].id, 42u);
  EXPECT_EQ(comm->events[6].ph, 'e');
  EXPECT_EQ(comm->events[6].ts_ns, 200);
}

TEST(Trace, StartDropsThePreviousWindowAndLateSpansAreDropped) {
  trace::start();
  for (int i = 0; i < 3; ++i) Span s("first window", "test");
  trace::start();
  { Span s("second window", "test"); }
  {
    Span late("late", "test");
    trace::stop();
  }
  const auto threads = trace::snapshot();
  ASSERT_EQ(threads.size(), 1u);
  ASSERT_EQ(threads[0].events.size(), 1u);
  EXPECT_STREQ(threads[0].events[0].name, "second window");
}

TEST(Trace, ReaderSeesWholeEventsWhileAThreadRecords) {
  trace::start();
  std::atomic<bool> done{false};
  constexpr int kEvents = 20000;
  std::thread writer([&] {
    trace::set_thread_name("writer under test");
    for (int i = 0; i < kEvents; ++i) trace::complete("e", "test", i, 1, {{"i", i}});
    done = true;
  });
  size_t last = 0;
  while (!done) {
    for (const auto& t : trace::snapshot()) {
      if (t.name != "writer under test") continue;
      // Published events are complete and in order, whatever the writer is doing now.
      for (size_t i = 0; i < t.events.size(); ++i) {
        ASSERT_EQ(t.events[i].args[0].value, static_cast<int64_t>(i));
        ASSERT_EQ(t.events[i].ts_ns, static_cast<int64_t>(i));
      }
      EXPECT_GE(t.events.size(), last);
      last = t.events.size();
    }
  }
  writer.join();
  trace::stop();
  const auto threads = trace::snapshot();
  const trace::ThreadEvents* w = find_thread(threads, "writer under test");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->events.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(w->dropped, 0);
}

TEST(Trace, InternReturnsOneStableCopy) {
  const char* a = trace::intern("backward layers.3 linear");
  for (int i = 0; i < 100; ++i) trace::intern("other " + std::to_string(i));
  EXPECT_EQ(trace::intern(std::string("backward layers.3 linear")), a);
  EXPECT_STREQ(a, "backward layers.3 linear");
}

TEST(TraceFile, ChromeJsonHasRowsMicrosecondsAndEscapedNames) {
  trace::ThreadEvents t;
  t.tid = 2;
  t.name = "comm";
  trace::Event x{};
  x.name = "all_reduce";
  x.cat = "gradients";
  x.ph = 'X';
  x.ts_ns = 1234567;
  x.dur_ns = 2500;
  x.nargs = 2;
  x.args[0] = {"seq", 17};
  x.args[1] = {"bucket", -1};
  trace::Event b{};
  b.name = "say \"hi\"\\";
  b.cat = "test";
  b.ph = 'b';
  b.ts_ns = 5;
  b.id = 9;
  t.events = {x, b};
  const std::string text = trace::chrome_trace_json({t}, 3, "rank 3", {{"rank", 3}});
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["otherData"]["kiln"]["rank"], 3);
  const auto& ev = j["traceEvents"];
  ASSERT_EQ(ev.size(), 5u);  // process name, thread name and sort index, two events
  EXPECT_EQ(ev[0]["name"], "process_name");
  EXPECT_EQ(ev[0]["args"]["name"], "rank 3");
  EXPECT_EQ(ev[1]["name"], "thread_name");
  EXPECT_EQ(ev[1]["tid"], 2);
  EXPECT_EQ(ev[1]["args"]["name"], "comm");
  EXPECT_EQ(ev[3]["ph"], "X");
  EXPECT_EQ(ev[3]["pid"], 3);
  EXPECT_DOUBLE_EQ(ev[3]["ts"].get<double>(), 1234.567);
  EXPECT_DOUBLE_EQ(ev[3]["dur"].get<double>(), 2.5);
  EXPECT_EQ(ev[3]["args"]["seq"], 17);
  EXPECT_EQ(ev[3]["args"]["bucket"], -1);
  EXPECT_EQ(ev[4]["name"], "say \"hi\"\\");
  EXPECT_EQ(ev[4]["id"], 9);
  EXPECT_FALSE(ev[4].contains("dur"));
  EXPECT_EQ(trace::rank_file_name(12), "rank-00012.trace.json");
}

}  // namespace
}  // namespace kiln::test
