#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "app/bench_profile.h"

namespace repa::app {

namespace {
std::string shapes_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string text;
  for (const auto& shape : shapes) {
    text += " [";
    for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
    text += "]";
  }
  return text;
}
}  // namespace

std::vector<OperatorTime> profile_operators(const std::function<void()>& step, int steps, bool by_shape) {
  namespace prof = torch::autograd::profiler;
  std::map<std::string, OperatorTime> by_name;
  {
    const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::CPU, by_shape);
    prof::TLSLegacyProfilerGuard guard(config, [&](const prof::thread_event_lists& threads) {
      for (const auto& events : threads) {
        // Ranges nest on each thread: a pop closes the newest open push with the same handle.
        struct Open {
          const prof::LegacyEvent* push;
          double children_us;
        };
        std::vector<Open> open;
        for (const auto& e : events) {
          if (e.kind() == prof::EventKind::PushRange) {
            open.push_back({&e, 0.0});
          } else if (e.kind() == prof::EventKind::PopRange) {
            auto it = std::find_if(open.rbegin(), open.rend(),
                                   [&](const Open& o) { return o.push->handle() == e.handle(); });
            if (it == open.rend()) continue;
            const double us = it->push->cpuElapsedUs(e);
            auto& entry = by_name[by_shape ? it->push->name() + shapes_text(it->push->shapes())
                                           : std::string(it->push->name())];
            entry.total_ms += us * 1e-3;
            entry.self_ms += (us - it->children_us) * 1e-3;
            entry.calls += 1;
            open.erase(std::next(it).base(), open.end());
            if (!open.empty()) open.back().children_us += us;
          }
        }
      }
    });
    for (int i = 0; i < steps; ++i) step();
  }
  std::vector<OperatorTime> out;
  for (auto& [name, t] : by_name) {
    if (name == "[memory]" || name.empty()) continue;
    t.name = name;
    t.self_ms /= steps, t.total_ms /= steps, t.calls /= steps;
    out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.self_ms > b.self_ms; });
  return out;
}

}  // namespace repa::app
