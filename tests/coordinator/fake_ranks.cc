// A stand-in for a multi-rank job in the coordinator's acceptance tests: `--world N` threads in
// one process, each a rank with its own Reporter (and so its own connection), stepping at a
// fixed pace and committing a checkpoint every K steps. Values follow closed forms the tests
// check: rank r reports loss 2 / (1 + step) and 100 * (r + 1) samples/s. Prints one JSON line
// per rank with what its reporter saw acknowledged.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/log.h"
#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/reporter.h"

int main(int argc, char** argv) {
  CLI::App app{"fake multi-rank job for the coordinator tests"};
  std::string address, token_file, job, root;
  int world = 2, steps = 20, every = 5;
  double step_ms = 20, heartbeat_s = 0.2;
  app.add_option("--address", address)->required();
  app.add_option("--token-file", token_file)->required();
  app.add_option("--job", job)->required();
  app.add_option("--world", world);
  app.add_option("--steps", steps);
  app.add_option("--step-ms", step_ms);
  app.add_option("--checkpoint-every", every, "0 = none");
  app.add_option("--checkpoint-root", root);
  app.add_option("--heartbeat-s", heartbeat_s);
  CLI11_PARSE(app, argc, argv);
  kiln::log::init();

  const std::string token = kiln::coord::client_token(token_file, job);
  std::vector<nlohmann::json> results(static_cast<size_t>(world));
  std::vector<std::thread> ranks;
  for (int r = 0; r < world; ++r) {
    ranks.emplace_back([&, r] {
      kiln::coord::ReporterOptions o;
      o.client.address = address;
      o.client.token = token;
      o.job = job;
      o.rank = r;
      o.world = world;
      o.config_hash = "0123456789abcdef";
      o.checkpoint_root = root;
      o.heartbeat_s = heartbeat_s;
      kiln::coord::GrpcReporter reporter(o);
      const auto t0 = std::chrono::steady_clock::now();
      for (int s = 1; s <= steps; ++s) {
        std::this_thread::sleep_until(
            t0 + std::chrono::microseconds(static_cast<int64_t>(s * step_ms * 1000)));
        reporter.on_step({s, 2.0 / (1 + s), 100.0 * (r + 1), step_ms});
        if (every > 0 && s % every == 0) {
          char name[32];
          std::snprintf(name, sizeof(name), "step-%08d", s);
          reporter.on_checkpoint({s, name, "xxh3:" + std::to_string(s), 0.01 * (r + 1), 1000});
        }
        if (r == 0 && s % 10 == 0) {
          std::printf("{\"progress\": %d}\n", s);
          std::fflush(stdout);
        }
      }
      reporter.on_phase(kiln::WorkerPhase::kFinished);
      // Wait (bounded) for the queued commits to be acknowledged before finishing.
      for (int i = 0; i < 500; ++i) {
        auto st = reporter.stats();
        if (every == 0 || st.commits_acked >= static_cast<uint64_t>(steps / every)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      auto st = reporter.stats();
      results[static_cast<size_t>(r)] = {{"rank", r},
                                         {"generation", st.generation},
                                         {"registrations", st.registrations},
                                         {"commits_acked", st.commits_acked},
                                         {"committed_steps", st.committed_steps},
                                         {"points_dropped", st.points_dropped}};
    });
  }
  for (std::thread& t : ranks) t.join();
  for (const nlohmann::json& j : results) std::printf("%s\n", j.dump().c_str());
  return 0;
}
