#include "core/train/progress_bar.h"

#include <cstdio>
#include <string>

namespace repa::train {

void ProgressBar::on_event(const nlohmann::json& event) {
  const std::string type = event.value("type", "");
  if (type == "log" || type == "error") {
    std::fprintf(stderr, "\r\033[K%s: %s\n", event.value("level", type).c_str(), event.value("message", "").c_str());
    return;
  }
  if (type != "metrics") return;
  const auto now = std::chrono::steady_clock::now();
  const int64_t step = event.value("step", int64_t{0});
  if (step != total_ && now - last_print_ < std::chrono::milliseconds(200)) return;
  last_print_ = now;
  const double ips = event.value("steps_per_sec", 0.0);
  const double eta = ips > 0 ? static_cast<double>(total_ - step) / ips : 0.0;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : 0;
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::string losses = "loss " + std::to_string(event.value("loss", 0.0)).substr(0, 7);
  for (const char* key : {"crepa_loss", "urepa_loss"})
    if (event.contains(key) && event[key].is_number())
      losses += std::string(" ") + key + " " + std::to_string(event[key].get<double>()).substr(0, 7);
  std::fprintf(stderr, "\r\033[K[%s] %lld/%lld %s %.2f it/s ETA %dm%02ds", bar.c_str(), static_cast<long long>(step),
               static_cast<long long>(total_), losses.c_str(), ips, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  if (step >= total_) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace repa::train
