// `kiln train`: one rank of a training job (a world of one without mpirun).
#include <csignal>

#include "comm/backend.h"
#include "core/config.h"
#include "core/device.h"
#include "core/env.h"
#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/trainer.h"

namespace kiln {

namespace {

struct TrainFlags {
  std::string config;
  std::vector<std::string> set;
  std::string resume = "none";
  bool print_config = false;
};

void on_stop_signal(int) { stop_requested().store(true); }

int run_train(const TrainFlags& flags) {
  // Installed first: a stop that arrives during start-up is honoured at the first step boundary.
  // SIGUSR1 is what mpirun passes on to every rank (kiln launch stops a job with it) and what
  // schedulers send as a warning before preemption.
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
  Config cfg = load_config(flags.config, flags.set);
  if (flags.print_config) {
    std::fputs(config_table(cfg).c_str(), stdout);
    return 0;
  }
  std::unique_ptr<Communicator> comm = make_communicator(cfg);
  ProcessContext& ctx = process_context();
  ctx.rank = comm->rank();
  ctx.world = comm->world();
  ctx.local_rank = comm->local_rank();
  log::refresh_prefix();

  int threads = static_cast<int>(cfg.train.threads);
  if (threads == 0) threads = static_cast<int>(env::get_int("KILN_NUM_THREADS"));
  if (threads == 0) threads = default_cpu_threads(comm->local_world());
  set_cpu_threads(threads);

  if (comm->rank() == 0) {
    std::string table = config_table(cfg);
    log::get("config")->info("resolved {}", table.substr(0, table.size() - 1));
  }
  try {
    Trainer trainer(cfg, *comm);
    trainer.resume(flags.resume);
    trainer.run();
  } catch (const std::exception& e) {
    if (comm->world() == 1) throw;
    // Other ranks may be waiting in a collective for this one: end the whole job now rather
    // than leave them to the watchdog. Errors all ranks agreed on (start-up agreement,
    // non-finite loss) end it the same way, from whichever rank gets here first.
    log::get("kiln")->error("{}", e.what());
    comm->abort(1);
  }
  return 0;
}

}  // namespace

CommandRunner add_train_command(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a model: one rank of a job (start N ranks with mpirun -np N)");
  cmd->add_option("-c,--config", flags->config,
                  "YAML config (default: the embedded configs/cnn_fashion.yaml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", flags->set,
                  "override a config key, e.g. --set train.steps=100 (repeatable; wins over "
                  "KILN_SET and the YAML)")
      ->allow_extra_args(false);  // one key=value per --set: a following -- ends the flags
  cmd->add_option("--resume", flags->resume,
                  "auto (the newest checkpoint under checkpoint.dir that verifies), none, or the "
                  "path of a checkpoint or of a directory of them")
      ->capture_default_str();
  cmd->add_flag("--print-config", flags->print_config,
                "print the resolved config as a table (and where each value came from) and exit");
  return [flags] { return run_train(*flags); };
}

CommandRunner add_env_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("env", "List the KILN_* environment variables Kiln reads");
  (void)cmd;
  return [] {
    for (const env::Knob& k : env::knobs()) {
      std::printf("%-26s default '%s'\n    %s\n", k.name, k.default_value, k.help);
    }
    return 0;
  };
}

}  // namespace kiln
