// kiln: one binary, subcommands like git (train, launch, coordinator, status, ckpt, data, ...).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "launcher/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Kiln: a distributed training runtime for multi-GPU clusters and CPUs.\n"
               "Run `kiln <command> --help` for the flags of a command.",
               "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  std::map<CLI::App*, kiln::CommandRunner> runners;
  auto add = [&](kiln::CommandRunner (*fn)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    kiln::CommandRunner r = fn(app);
    runners[app.get_subcommands({})[before]] = std::move(r);
  };
  add(&kiln::add_train_command);
  add(&kiln::add_config_command);
  add(&kiln::add_env_command);
  add(&kiln::add_ckpt_command);
  add(&kiln::add_trace_command);
  add(&kiln::add_data_command);
  add(&kiln::add_sample_command);
  add(&kiln::add_coordinator_command);
  add(&kiln::add_launch_command);
  add(&kiln::add_status_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  kiln::log::init();
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) {
      try {
        return run();
      } catch (const kiln::Error& e) {
        kiln::log::get("kiln")->error("{}", e.what());
        return 1;
      } catch (const std::exception& e) {
        kiln::log::get("kiln")->error("unexpected error: {}", e.what());
        return 1;
      }
    }
  }
  return 1;
}
