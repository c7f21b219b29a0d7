// A run's folder, the source of truth the studio follows: config.json (fully resolved), metrics.jsonl,
// events.jsonl, train.log, status.json (state + heartbeat, replaced atomically), checkpoints/, samples/,
// run.lock (held while a worker uses the folder).
#pragma once
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/run_lock.h"

namespace repa::train {

class RunDirectory {
 public:
  // Creates the folder and its sub-folders and takes its lock: a folder another worker holds throws
  // InputError naming that worker (pid, host, since). Then removes what a killed worker left in checkpoints/.
  explicit RunDirectory(std::string path);

  const std::string& path() const { return path_; }
  std::string checkpoints() const { return path_ + "/checkpoints"; }
  std::string samples() const { return path_ + "/samples"; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  void write_config(const nlohmann::json& resolved_config) const;
  // Merges `fields` into status.json (state, step, heartbeat, ...) and replaces it atomically.
  void update_status(const nlohmann::json& fields);
  nlohmann::json status() const;
  void append_log(const std::string& line);  // one line into train.log, with a UTC timestamp
  // What opening the folder did that a user should hear of (a stale lock taken over, leftovers removed);
  // each returned once.
  std::vector<std::string> take_notes();

 private:
  std::string path_;
  std::unique_ptr<RunLock> lock_;
  std::vector<std::string> notes_;
  std::mutex mutex_;
  nlohmann::json status_ = nlohmann::json::object();
  std::ofstream log_;
};

// The run folder for a config: studio.run_name under output_dir, else "run-YYYYmmdd-HHMMSS".
std::string run_directory_for(const nlohmann::json& config);

// The hash of a resolved config (16 hex digits over its canonical text), stored in every checkpoint.
std::string config_hash(const nlohmann::json& resolved_config);

}  // namespace repa::train
