// The subcommands of the `kiln` binary. Each registers its flags on the CLI11 parser (so --help
// is generated from the same definitions that read them) and returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace kiln {

// A subcommand: registered on the app, run when chosen.
using CommandRunner = std::function<int()>;
CommandRunner add_train_command(CLI::App& app);
CommandRunner add_env_command(CLI::App& app);
CommandRunner add_config_command(CLI::App& app);
CommandRunner add_ckpt_command(CLI::App& app);
CommandRunner add_trace_command(CLI::App& app);
CommandRunner add_data_command(CLI::App& app);
CommandRunner add_sample_command(CLI::App& app);
CommandRunner add_coordinator_command(CLI::App& app);
CommandRunner add_status_command(CLI::App& app);
CommandRunner add_launch_command(CLI::App& app);

}  // namespace kiln
