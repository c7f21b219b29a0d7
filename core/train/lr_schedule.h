// Learning-rate schedules as SimpleTuner offers them (diffusers' get_scheduler): constant,
// constant_with_warmup, linear, cosine and polynomial, each with a linear warm-up over lr_warmup_steps.
// Pure functions of the step, so resuming needs only the step.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace repa::train {

struct LrSchedule {
  std::string kind = "constant";
  double base_lr = 1e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double power = 1.0;        // polynomial
  double end_lr = 1e-7;      // polynomial's final rate (diffusers' lr_end)
  double num_cycles = 0.5;   // cosine: half a wave from base_lr to 0

  // From learning_rate, lr_scheduler, lr_warmup_steps, max_train_steps, lr_power, lr_end, lr_num_cycles.
  // Throws InputError naming lr_scheduler for a schedule the studio does not have.
  static LrSchedule from_config(const nlohmann::json& config);

  double lr(int64_t step) const;  // the rate for optimizer step `step` (0-based)
};

}  // namespace repa::train
