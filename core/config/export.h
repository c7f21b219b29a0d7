// Writing a resolved config for SimpleTuner (config.json with only the names SimpleTuner registers, plus a
// multidatabackend.json for the studio's dataset folder) or for the studio (the full resolved config).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/registry.h"

namespace repa::config {

struct SimpleTunerExport {
  nlohmann::json config;             // bare SimpleTuner keys (no leading "--"), null values left out
  nlohmann::json multidatabackend;   // null when the config has no studio.dataset_dir
  std::vector<std::string> dropped;  // "key: why it is not in config.json"
  // SimpleTuner's train.sh reads its launcher settings from config.env beside config.json (TRAINING_NUM_PROCESSES,
  // TRAINING_NUM_MACHINES, MIXED_PRECISION, ACCELERATE_EXTRA_ARGS) and runs accelerate launch with them; empty
  // unless studio.num_processes asks for more than one process.
  std::string config_env;
};

// `out_dir` is where the files will be written: data_backend_config points at its multidatabackend.json.
SimpleTunerExport export_simpletuner(const nlohmann::json& resolved, const std::string& out_dir);

// Writes config.json (and multidatabackend.json when there is one) into out_dir, creating it.
SimpleTunerExport write_simpletuner_export(const nlohmann::json& resolved, const std::string& out_dir);
void write_studio_export(const nlohmann::json& resolved, const std::string& out_dir);

// Problems with the files a run needs (dataset, weights, output folder); validate() leaves paths alone so
// that a config written for another machine still validates.
std::vector<Problem> check_paths(const nlohmann::json& resolved);

}  // namespace repa::config
