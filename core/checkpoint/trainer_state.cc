// trainer.json serialisation.
#include "core/checkpoint/trainer_state.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {

std::string trainer_state_to_json(const TrainerState& s) {
  nlohmann::ordered_json j;
  j["format"] = "kiln-trainer/1";
  j["kiln_version"] = s.kiln_version;
  j["step"] = s.step;
  j["epoch"] = s.dataset_size > 0 ? s.cursor / s.dataset_size : 0;
  j["cursor"] = s.cursor;
  j["dataset_size"] = s.dataset_size;
  // Every random draw is a pure function of (seed, step, global sample index), so the seeds are
  // the whole RNG state.
  j["rng"] = {{"scheme", "philox4x32-10 keyed by (seed, step, sample)"},
              {"train_seed", s.train_seed},
              {"data_seed", s.data_seed}};
  j["lr_schedule"] = {
      {"schedule", s.schedule}, {"step", s.step}, {"total_steps", s.total_steps}, {"lr", s.lr}};
  j["loss_scale"] = s.loss_scale;
  j["world_size"] = s.world;
  j["optimizer"] = {{"name", s.optimizer}, {"steps_taken", s.optimizer_steps}};
  j["skipped_steps"] = s.skipped_steps;
  j["consecutive_skips"] = s.consecutive_skips;
  j["model"] = {
      {"name", s.model_name}, {"fingerprint", s.model_fingerprint}, {"parameters", s.parameters}};
  j["config_hash"] = s.config_hash;
  j["config"] = nlohmann::ordered_json::parse(s.config_json);
  return j.dump(2) + "\n";
}

TrainerState parse_trainer_state(const std::string& text, const std::string& origin) {
  TrainerState s;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    const std::string format = j.at("format").get<std::string>();
    KILN_CHECK(format == "kiln-trainer/1",
               "{}: format '{}' is not one this Kiln reads "
               "(kiln-trainer/1)",
               origin, format);
    s.kiln_version = j.value("kiln_version", "");
    s.step = j.at("step").get<int64_t>();
    s.cursor = j.at("cursor").get<int64_t>();
    s.dataset_size = j.at("dataset_size").get<int64_t>();
    s.train_seed = j.at("rng").at("train_seed").get<uint64_t>();
    s.data_seed = j.at("rng").at("data_seed").get<uint64_t>();
    s.schedule = j.at("lr_schedule").at("schedule").get<std::string>();
    s.total_steps = j.at("lr_schedule").at("total_steps").get<int64_t>();
    s.lr = j.at("lr_schedule").at("lr").get<double>();
    s.loss_scale = j.at("loss_scale").get<double>();
    s.world = j.at("world_size").get<int>();
    s.optimizer = j.at("optimizer").at("name").get<std::string>();
    s.optimizer_steps = j.at("optimizer").at("steps_taken").get<int64_t>();
    s.skipped_steps = j.at("skipped_steps").get<int64_t>();
    s.consecutive_skips = j.at("consecutive_skips").get<int64_t>();
    s.model_name = j.at("model").at("name").get<std::string>();
    s.model_fingerprint = j.at("model").at("fingerprint").get<std::string>();
    s.parameters = j.at("model").at("parameters").get<int64_t>();
    s.config_hash = j.at("config_hash").get<std::string>();
    s.config_json = j.at("config").dump();
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("{}: not a valid trainer state ({})", origin, e.what());
  }
  return s;
}

}  // namespace kiln
