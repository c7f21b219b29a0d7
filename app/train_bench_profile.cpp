// The operator profile of `repa-train bench --profile`: RecordFunction callbacks (the interface LibTorch's own
// profilers are built on, the same in 1.13 and 2.x) time every operator and autograd node on this thread.
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "app/bench_profile.h"

namespace repa::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Open {
  std::string key;
  Clock::time_point start;
  double children_ms = 0;
};

// Callbacks are plain function pointers, so what they share lives in thread-local state.
thread_local std::vector<Open> open_ranges;
thread_local std::map<std::string, OperatorTime>* totals = nullptr;
thread_local bool key_by_shape = false;

std::string key_of(const at::RecordFunction& fn) {
  std::string key = fn.name();
  if (!key_by_shape) return key;
  for (const auto& input : fn.inputs()) {
    key += " [";
    if (input.isTensor()) {
      const auto sizes = input.toTensor().sizes();
      for (size_t i = 0; i < sizes.size(); ++i) key += (i ? "," : "") + std::to_string(sizes[i]);
    }
    key += "]";
  }
  return key;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (totals) open_ranges.push_back({key_of(fn), Clock::now(), 0.0});
  return nullptr;
}

void on_end(const at::RecordFunction&, at::ObserverContext*) {
  if (!totals || open_ranges.empty()) return;
  const Open range = open_ranges.back();
  open_ranges.pop_back();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - range.start).count();
  auto& entry = (*totals)[range.key];
  entry.total_ms += ms;
  entry.self_ms += ms - range.children_ms;
  entry.calls += 1;
  if (!open_ranges.empty()) open_ranges.back().children_ms += ms;
}

}  // namespace

std::vector<OperatorTime> profile_operators(const std::function<void()>& step, int steps, bool by_shape) {
  std::map<std::string, OperatorTime> by_key;
  totals = &by_key;
  key_by_shape = by_shape;
  open_ranges.clear();
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end).needsInputs(by_shape));
  try {
    for (int i = 0; i < steps; ++i) step();
  } catch (...) {
    at::removeCallback(handle);
    totals = nullptr;
    throw;
  }
  at::removeCallback(handle);
  totals = nullptr;
  std::vector<OperatorTime> out;
  for (auto& [key, t] : by_key) {
    t.name = key;
    t.self_ms /= steps, t.total_ms /= steps, t.calls /= steps;
    out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.self_ms > b.self_ms; });
  return out;
}

}  // namespace repa::app
