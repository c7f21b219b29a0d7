#include "core/train/event_sink.h"

#include <chrono>
#include <filesystem>
#include <vector>

#include "core/base/error.h"
#include "core/io/jsonl_file.h"

namespace repa::train {

void EventSink::open_run_directory(const std::string& run_dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::filesystem::create_directories(run_dir);
  // Appending after a torn last line would glue the first new event to it (RunDirectory repairs and reports
  // this first; a sink used without one still never writes after half a line).
  std::vector<std::string> repaired;
  for (const char* jsonl : {"/events.jsonl", "/metrics.jsonl"})
    if (auto note = io::repair_jsonl_tail(run_dir + jsonl); !note.empty()) repaired.push_back(std::move(note));
  events_.open(run_dir + "/events.jsonl", std::ios::app);
  metrics_.open(run_dir + "/metrics.jsonl", std::ios::app);
  if (!events_ || !metrics_) throw Error("cannot write the event files in run directory '" + run_dir + "'");
  for (const auto& note : repaired) {
    const nlohmann::json event = {
        {"type", "log"},
        {"time", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
        {"level", "warning"},
        {"message", note}};
    events_ << event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  events_.flush();
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
