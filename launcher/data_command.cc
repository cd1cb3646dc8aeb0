// `kiln data prepare-text IN --out DIR`: byte-level tokenizes a text file into token shards
// with a train/validation split (core/data/token_shard.h).
#include "core/config.h"
#include "core/data/token_shard.h"
#include "launcher/commands.h"

namespace kiln {

namespace {

struct PrepareFlags {
  std::string input, out;
  PrepareTextOptions options;
};

int run_prepare_text(const PrepareFlags& f) {
  PrepareTextSummary s = prepare_text_shards(f.input, f.out, f.options);
  const double total = static_cast<double>(s.train_tokens + s.val_tokens);
  std::printf(
      "prepared %s: %lld tokens (byte-level, vocabulary 256) -> train %lld, validation "
      "%lld (%.2f%%, every %.0fth block of %lld bytes)\n",
      f.input.c_str(), static_cast<long long>(total), static_cast<long long>(s.train_tokens),
      static_cast<long long>(s.val_tokens), 100.0 * static_cast<double>(s.val_tokens) / total,
      1.0 / f.options.val_fraction, static_cast<long long>(s.block_bytes));
  for (const std::string& p : s.files) std::printf("  %s\n", p.c_str());
  return 0;
}

}  // namespace

CommandRunner add_data_command(CLI::App& app) {
  auto flags = std::make_shared<PrepareFlags>();
  flags->options.val_fraction = DataConfig{}.val_fraction;
  CLI::App* cmd = app.add_subcommand("data", "Prepare datasets");
  cmd->require_subcommand(1);
  CLI::App* prep =
      cmd->add_subcommand("prepare-text",
                          "Byte-level tokenize a text file into token shards (train-*.tok, "
                          "val-*.tok) for data.name: text");
  prep->add_option("input", flags->input, "the text file")->required()->check(CLI::ExistingFile);
  prep->add_option("-o,--out", flags->out, "output folder (its old shards are replaced)")
      ->required();
  prep->add_option("--val-fraction", flags->options.val_fraction,
                   "share of the text held out for validation, as evenly spread blocks")
      ->capture_default_str();
  prep->add_option("--block-bytes", flags->options.block_bytes,
                   "size of the blocks the split deals out (smaller for short texts)")
      ->capture_default_str();
  prep->add_option("--shard-tokens", flags->options.shard_tokens, "tokens per shard at most")
      ->capture_default_str();
  return [flags, prep] {
    if (prep->parsed()) return run_prepare_text(*flags);
    return 1;
  };
}

}  // namespace kiln
