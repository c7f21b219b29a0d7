#include "core/train/run_directory.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <unistd.h>

#include "core/base/error.h"
#include "core/data/feature_cache.h"
#include "core/io/atomic_file.h"

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
  log_.open(file("train.log"), std::ios::app);
  std::ifstream existing(file("status.json"));
  if (existing) status_ = nlohmann::json::parse(existing, nullptr, false);
  if (!status_.is_object()) status_ = nlohmann::json::object();
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
