// The terminal view of a headless run without --events stdio: one line rewritten in place with the step,
// the losses, it/s and the time left. Listens to the event stream like any other consumer.
#pragma once
#include <chrono>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace repa::train {

class ProgressBar {
 public:
  explicit ProgressBar(int64_t total_steps) : total_(total_steps) {}
  void on_event(const nlohmann::json& event);  // prints to stderr

 private:
  int64_t total_;
  std::chrono::steady_clock::time_point last_print_{};
};

}  // namespace repa::train
