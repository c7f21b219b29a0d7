// A run's folder, the source of truth the studio follows: config.json (fully resolved), metrics.jsonl,
// events.jsonl, train.log, status.json (state + heartbeat, replaced atomically), checkpoints/, samples/.
#pragma once
#include <fstream>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace repa::train {

class RunDirectory {
 public:
  explicit RunDirectory(std::string path);  // creates the folder and its sub-folders

  const std::string& path() const { return path_; }
  std::string checkpoints() const { return path_ + "/checkpoints"; }
  std::string samples() const { return path_ + "/samples"; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  void write_config(const nlohmann::json& resolved_config) const;
  // Merges `fields` into status.json (state, step, heartbeat, ...) and replaces it atomically.
  void update_status(const nlohmann::json& fields);
  nlohmann::json status() const;
  void append_log(const std::string& line);  // one line into train.log, with a UTC timestamp

 private:
  std::string path_;
  std::mutex mutex_;
  nlohmann::json status_ = nlohmann::json::object();
  std::ofstream log_;
};

// The run folder for a config: studio.run_name under output_dir, else "run-YYYYmmdd-HHMMSS".
std::string run_directory_for(const nlohmann::json& config);

// The hash of a resolved config (16 hex digits over its canonical text), stored in every checkpoint.
std::string config_hash(const nlohmann::json& resolved_config);

}  // namespace repa::train
