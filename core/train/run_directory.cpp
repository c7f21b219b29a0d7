#include "core/train/run_directory.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <iterator>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/data/feature_cache.h"
#include "core/io/atomic_file.h"
#include "core/io/jsonl_file.h"
#include "core/train/checkpoint.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {
std::string utc_stamp(const char* format) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof(text), format, &tm);
  return text;
}
}  // namespace

RunDirectory::RunDirectory(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  fs::create_directories(checkpoints(), ec);
  fs::create_directories(samples(), ec);
  if (!fs::is_directory(path_)) throw InputError("cannot create the run directory '" + path_ + "'");
  // Nothing in the folder is touched before the lock is ours: a second worker leaves the first one's files alone.
  lock_ = std::make_unique<RunLock>(path_);
  if (!lock_->takeover_note().empty()) notes_.push_back(lock_->takeover_note());
  for (auto& note : clean_checkpoint_leftovers(checkpoints())) notes_.push_back(std::move(note));
  // This run appends to the event files: a line torn by the last run's full disk or kill goes first.
  for (const char* jsonl : {"metrics.jsonl", "events.jsonl"})
    if (auto repaired = io::repair_jsonl_tail(file(jsonl)); !repaired.empty()) notes_.push_back(std::move(repaired));
  log_.open(file("train.log"), std::ios::app);
  std::ifstream existing(file("status.json"));
  if (existing) {
    const std::string text((std::istreambuf_iterator<char>(existing)), std::istreambuf_iterator<char>());
    status_ = try_parse_json_bounded(text);
  }
  if (!status_.is_object()) status_ = nlohmann::json::object();
}

std::vector<std::string> RunDirectory::take_notes() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto out = std::move(notes_);
  notes_.clear();
  return out;
}

void RunDirectory::write_config(const nlohmann::json& resolved_config) const {
  io::write_text_atomically(file("config.json"), resolved_config.dump(2) + "\n");
}

void RunDirectory::update_status(const nlohmann::json& fields) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, value] : fields.items()) status_[key] = value;
  status_["heartbeat"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  status_["pid"] = static_cast<int64_t>(::getpid());
  io::write_text_atomically(file("status.json"),
                            status_.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

nlohmann::json RunDirectory::status() const { return status_; }

void RunDirectory::append_log(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  log_ << utc_stamp("%Y-%m-%dT%H:%M:%SZ") << ' ' << line << '\n';
  log_.flush();
}

std::string run_directory_for(const nlohmann::json& config) {
  std::string output = config.value("output_dir", std::string());
  if (output.empty()) output = "runs";
  std::string name;
  if (config.contains("studio") && config["studio"].is_object())
    name = config["studio"].value("run_name", std::string());
  if (name.empty()) name = "run-" + utc_stamp("%Y%m%d-%H%M%S");
  return (fs::path(output) / name).string();
}

std::string config_hash(const nlohmann::json& resolved_config) { return data::settings_hash(resolved_config); }

}  // namespace repa::train
