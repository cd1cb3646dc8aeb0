// Heartbeat load generator for scripts/bench/coordinator: N simulated workers, each heartbeating
// once a second (spread evenly over the second), through the asynchronous gRPC client on a few
// channels. Latency runs from each call's scheduled time to its completion, so a client that
// falls behind shows up as latency too. Prints one line per level and per peer run.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/log.h"
#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/client.h"
#include "launcher/coordinator/reporter.h"

namespace pb = ::kiln::coord::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRanksPerJob = 1000;

struct Results {
  std::vector<double> latency_ms;  // measured calls only
  uint64_t errors = 0;
  uint64_t issued = 0;
  double server_cpu_s = 0, client_cpu_s = 0;  // over the whole level, warm-up included
  uint64_t calls = 0;                         // over the whole level
};

// CPU seconds (user + system) of process `pid` from /proc, or of this process when 0.
double cpu_seconds(int pid) {
  if (pid == 0) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  }
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return NAN;
  char buf[2048] = {0};
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  // utime and stime are fields 14 and 15; the command name before them ends at the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p || n == 0) return NAN;
  unsigned long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) !=
      2) {
    return NAN;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct CallBase {
  virtual ~CallBase() = default;
  grpc::ClientContext ctx;
  grpc::Status status;
  Clock::time_point scheduled;
  Results* results = nullptr;  // null: not measured (warm-up)
};

template <typename Reply>
struct Call : CallBase {
  Reply reply;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> rpc;
};

class Load {
 public:
  Load(const kiln::coord::ClientOptions& o, int channels) : token_(o.token) {
    for (int i = 0; i < channels; ++i) {
      grpc::ChannelArguments args;
      // A private subchannel pool gives each channel its own connection.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      stubs_.push_back(pb::Coordinator::NewStub(
          grpc::CreateCustomChannel(o.address, grpc::InsecureChannelCredentials(), args)));
    }
    poller_ = std::thread([this] { poll(); });
  }
  ~Load() {
    cq_.Shutdown();
    poller_.join();
  }

  // Registers workers [0, n) as jobs of kRanksPerJob ranks; returns the failures.
  uint64_t register_workers(int n) {
    Results r;
    for (int w = 0; w < n; ++w) {
      while (inflight_.load() > 2000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      pb::RegisterRequest req;
      req.set_job(job_of(w));
      req.set_generation(0);
      req.set_rank(w % kRanksPerJob);
      req.set_world(kRanksPerJob);
      req.set_host("bench");
      req.set_pid(100000 + w);
      auto* c = new Call<pb::RegisterReply>;
      start(c, &r, 30.0);
      c->rpc = stubs_[w % stubs_.size()]->AsyncRegister(&c->ctx, req, &cq_);
      c->rpc->Finish(&c->reply, &c->status, c);
    }
    drain();
    return r.errors;
  }

  // `n` calls a second for warmup_s + seconds; measures the last `seconds`. `ping`: the peer
  // call (an authenticated no-op) instead of Heartbeat.
  Results run(int n, double warmup_s, double seconds, bool ping, int server_pid) {
    Results r;
    const double server0 = cpu_seconds(server_pid), client0 = cpu_seconds(0);
    const auto t0 = Clock::now();
    const double period = 1.0 / n;
    const uint64_t total = static_cast<uint64_t>((warmup_s + seconds) * n);
    const uint64_t first_measured = static_cast<uint64_t>(warmup_s * n);
    uint64_t k = 0;
    while (k < total) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      const uint64_t due = std::min<uint64_t>(total, static_cast<uint64_t>(elapsed / period) + 1);
      for (; k < due; ++k) {
        const auto scheduled =
            t0 + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(k) * period));
        Results* sink = k >= first_measured ? &r : nullptr;
        const int w = static_cast<int>(k % static_cast<uint64_t>(n));
        auto& stub = stubs_[k % stubs_.size()];
        if (ping) {
          auto* c = new Call<pb::PingReply>;
          start(c, sink, 2.0);
          c->scheduled = scheduled;
          c->rpc = stub->AsyncPing(&c->ctx, pb::PingRequest(), &cq_);
          c->rpc->Finish(&c->reply, &c->status, c);
        } else {
          pb::HeartbeatRequest req;
          req.set_job(job_of(w));
          req.set_generation(0);
          req.set_rank(w % kRanksPerJob);
          req.set_step(static_cast<int64_t>(k / static_cast<uint64_t>(n)));
          req.set_phase(pb::PHASE_TRAINING);
          req.set_samples_per_s(1000.0);
          auto* c = new Call<pb::HeartbeatReply>;
          start(c, sink, 2.0);
          c->scheduled = scheduled;
          c->rpc = stub->AsyncHeartbeat(&c->ctx, req, &cq_);
          c->rpc->Finish(&c->reply, &c->status, c);
        }
        if (sink) ++r.issued;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    drain();
    r.server_cpu_s = server_pid ? cpu_seconds(server_pid) - server0 : NAN;
    r.client_cpu_s = cpu_seconds(0) - client0;
    r.calls = total;
    return r;
  }

 private:
  static std::string job_of(int w) { return "bench-" + std::to_string(w / kRanksPerJob); }

  void start(CallBase* c, Results* sink, double timeout_s) {
    kiln::coord::prepare_context(c->ctx, token_, timeout_s);
    c->results = sink;
    c->scheduled = Clock::now();
    inflight_.fetch_add(1);
  }

  void drain() {
    while (inflight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  void poll() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      auto* c = static_cast<CallBase*>(tag);
      if (c->results) {
        if (ok && c->status.ok()) {
          c->results->latency_ms.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - c->scheduled).count());
        } else {
          ++c->results->errors;
          if (c->results->errors == 1) {
            std::fprintf(stderr, "first failed call: %s\n",
                         kiln::coord::describe(c->status).c_str());
          }
        }
      }
      delete c;
      inflight_.fetch_sub(1);
    }
  }

  std::string token_;
  std::vector<std::unique_ptr<pb::Coordinator::Stub>> stubs_;
  grpc::CompletionQueue cq_;
  std::atomic<int64_t> inflight_{0};
  std::thread poller_;
};

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return NAN;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

// "level kind=heartbeat n=1000 p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=.. errors=..
// completed=.. issued=.."
void report(const char* kind, int n, Results& r) {
  std::vector<double>& v = r.latency_ms;
  const double max = v.empty() ? NAN : *std::max_element(v.begin(), v.end());
  std::printf(
      "level kind=%s n=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
      "errors=%llu completed=%zu issued=%llu server_cpu_us_per_call=%.1f "
      "client_cpu_us_per_call=%.1f\n",
      kind, n, percentile(v, 0.5), percentile(v, 0.9), percentile(v, 0.99), percentile(v, 0.999),
      max, static_cast<unsigned long long>(r.errors), v.size(),
      static_cast<unsigned long long>(r.issued), 1e6 * r.server_cpu_s / r.calls,
      1e6 * r.client_cpu_s / r.calls);
  std::fflush(stdout);
}

// What the reporter costs a training step: the training thread's calls (on_step and
// pending_action, timed over many calls), and the reporter thread's CPU while a run reports
// `rate` steps a second (this process's CPU with the main thread asleep between steps).
void reporter_cost(const kiln::coord::ClientOptions& o, double rate, double seconds) {
  kiln::coord::ReporterOptions ro;
  ro.client = o;
  ro.job = "reporter-cost";
  ro.heartbeat_s = 1.0;
  kiln::coord::GrpcReporter reporter(ro);
  constexpr int kCalls = 200000;
  uint64_t sink = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < kCalls; ++i) {
    reporter.on_step({i, 1.0, 1000.0, 1.0});
    sink += reporter.pending_action().id;
  }
  const double per_call_ns =
      std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kCalls;
  // Let the thread send what queued (drops included), then measure steady reporting.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double cpu0 = cpu_seconds(0);
  t0 = Clock::now();
  const auto period = std::chrono::duration<double>(1.0 / rate);
  for (int64_t i = 0; Clock::now() - t0 < std::chrono::duration<double>(seconds); ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(period * i));
    reporter.on_step({kCalls + i, 1.0, 1000.0, 1.0});
    sink += reporter.pending_action().id;
  }
  const double cpu_share =
      (cpu_seconds(0) - cpu0) / std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "reporter step_call_ns=%.1f thread_cpu_share=%.5f steps_per_s=%.0f heartbeats=%llu "
      "points_acked=%llu%s\n",
      per_call_ns, cpu_share, rate, static_cast<unsigned long long>(reporter.stats().heartbeats),
      static_cast<unsigned long long>(reporter.stats().points_acked), sink ? "?" : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Heartbeat load against a running kiln coordinator"};
  std::string address, token_file;
  std::vector<int> levels = {1000, 2000, 5000, 10000, 15000, 20000, 30000};
  double seconds = 8, warmup = 2, limit_ms = 50;
  int channels = 8, peer_n = 1000, server_pid = 0;
  app.add_option("--address", address)->required();
  app.add_option("--token-file", token_file)->required();
  app.add_option("--levels", levels, "workers per level, increasing")->delimiter(',');
  app.add_option("--seconds", seconds, "measured seconds per level");
  app.add_option("--warmup", warmup, "unmeasured seconds before each level");
  app.add_option("--channels", channels, "client channels (connections)");
  app.add_option("--p99-limit-ms", limit_ms, "a level is held when p99 <= this, without errors");
  app.add_option("--peer-n", peer_n, "rate of the Ping peer run (0 = none)");
  app.add_option("--server-pid", server_pid, "the coordinator's pid, to report its CPU per call");
  double reporter_rate = 0;
  app.add_option("--reporter-cost", reporter_rate,
                 "instead of the load: measure a reporter's cost at this many steps/s");
  CLI11_PARSE(app, argc, argv);
  kiln::log::init();
  try {
    kiln::coord::ClientOptions o;
    o.address = address;
    o.token = kiln::coord::client_token(token_file, "bench-0");
    if (reporter_rate > 0) {
      reporter_cost(o, reporter_rate, seconds);
      return 0;
    }
    Load load(o, channels);
    const int most = *std::max_element(levels.begin(), levels.end());
    const auto t0 = Clock::now();
    const uint64_t failed = load.register_workers(most);
    std::printf("registered %d workers in %.2f s (%llu failed)\n", most,
                std::chrono::duration<double>(Clock::now() - t0).count(),
                static_cast<unsigned long long>(failed));
    if (peer_n > 0) {
      Results peer = load.run(peer_n, warmup, seconds, true, server_pid);
      report("ping", peer_n, peer);
    }
    int held = 0;
    for (int n : levels) {
      Results r = load.run(n, warmup, seconds, false, server_pid);
      report("heartbeat", n, r);
      const bool ok = r.errors == 0 && !r.latency_ms.empty() && r.latency_ms.size() >= r.issued &&
                      percentile(r.latency_ms, 0.99) <= limit_ms;
      if (!ok) break;  // larger levels would not hold either
      held = n;
    }
    std::printf("held n=%d\n", held);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coordinator_load: %s\n", e.what());
    return 1;
  }
  return 0;
}
