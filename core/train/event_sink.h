// Where a run reports what happens: JSON lines into the run directory (events.jsonl, and metrics.jsonl for
// `metrics` events), optionally onto stdout (`--events stdio`, what the studio reads), and to listeners such
// as the terminal progress bar. The schema is documented in docs/events.md; its version is kEventSchema.
#pragma once
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace repa::train {

inline constexpr int kEventSchema = 1;

class EventSink {
 public:
  EventSink() = default;
  // Appends to <run_dir>/events.jsonl and <run_dir>/metrics.jsonl (created when missing).
  void open_run_directory(const std::string& run_dir);
  void set_stdout(bool on) { to_stdout_ = on; }
  void add_listener(std::function<void(const nlohmann::json&)> listener);

  // Adds "type" and, when missing, "time" (Unix seconds), then writes one line everywhere. Thread-safe.
  void emit(const std::string& type, nlohmann::json payload = nlohmann::json::object());
  void log(const std::string& level, const std::string& message);  // a `log` event

 private:
  std::mutex mutex_;
  std::ofstream events_, metrics_;
  bool to_stdout_ = false;
  std::vector<std::function<void(const nlohmann::json&)>> listeners_;
};

}  // namespace repa::train
