// Where a benchmarked step spends its time: every operator of a few steps timed and summed per operator.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace repa::app {

struct OperatorTime {
  std::string name;    // an ATen operator ("aten::mm") or an autograd node ("MmBackward0")
  double self_ms = 0;  // per step, excluding the operators it called
  double total_ms = 0; // per step, including them
  double calls = 0;    // per step
};

// Runs `step` `steps` times under the CPU profiler and returns the operators by falling self time; with
// `by_shape`, calls with different input shapes are counted apart ("aten::copy_ [8,256,768] [8,256,768]").
std::vector<OperatorTime> profile_operators(const std::function<void()>& step, int steps, bool by_shape = false);

}  // namespace repa::app
