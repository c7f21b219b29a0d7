#include "core/train/event_sink.h"

#include <chrono>
#include <filesystem>

#include "core/base/error.h"

namespace repa::train {

void EventSink::open_run_directory(const std::string& run_dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::filesystem::create_directories(run_dir);
  events_.open(run_dir + "/events.jsonl", std::ios::app);
  metrics_.open(run_dir + "/metrics.jsonl", std::ios::app);
  if (!events_ || !metrics_) throw Error("cannot write the event files in run directory '" + run_dir + "'");
}

void EventSink::add_listener(std::function<void(const nlohmann::json&)> listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  listeners_.push_back(std::move(listener));
}

void EventSink::emit(const std::string& type, nlohmann::json payload) {
  nlohmann::json event = {{"type", type}};
  if (!payload.contains("time"))
    event["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto& [key, value] : payload.items()) event[key] = std::move(value);
  // NaN is not JSON: a non-finite number is written as null and flagged by the caller's error event.
  const std::string line = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  if (events_.is_open()) {
    events_ << line;
    events_.flush();
  }
  if (type == "metrics" && metrics_.is_open()) {
    metrics_ << line;
    metrics_.flush();
  }
  if (to_stdout_) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
  for (const auto& listener : listeners_) listener(event);
}

void EventSink::log(const std::string& level, const std::string& message) {
  emit("log", {{"level", level}, {"message", message}});
}

}  // namespace repa::train
