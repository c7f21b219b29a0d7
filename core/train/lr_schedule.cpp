#include "core/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"

namespace repa::train {

namespace {
double number(const nlohmann::json& config, const char* key, double fallback) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  const auto& v = config[key];
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) return std::stod(v.get<std::string>());
  throw InputError(std::string(key) + " must be a number, got " + v.dump());
}
}  // namespace

LrSchedule LrSchedule::from_config(const nlohmann::json& config) {
  LrSchedule s;
  s.kind = config.contains("lr_scheduler") && config["lr_scheduler"].is_string()
               ? config["lr_scheduler"].get<std::string>() : "constant";
  s.base_lr = number(config, "learning_rate", 1e-4);
  s.warmup_steps = static_cast<int64_t>(number(config, "lr_warmup_steps", 0));
  s.total_steps = std::max<int64_t>(1, static_cast<int64_t>(number(config, "max_train_steps", 1)));
  s.power = number(config, "lr_power", 1.0);
  s.end_lr = number(config, "lr_end", 1e-7);
  s.num_cycles = number(config, "lr_num_cycles", 1.0) * 0.5;
  static const char* kKnown[] = {"constant", "constant_with_warmup", "linear", "cosine", "polynomial"};
  if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return s.kind == k; }))
    throw InputError("lr_scheduler '" + s.kind +
                     "' is not available in the studio (choose constant, constant_with_warmup, linear, cosine or "
                     "polynomial)");
  return s;
}

double LrSchedule::lr(int64_t step) const {
  const double warm = static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (kind != "constant" && step < warmup_steps) return base_lr * static_cast<double>(step) / warm;
  if (kind == "constant" || kind == "constant_with_warmup") return base_lr;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  if (kind == "linear") return base_lr * std::max(0.0, 1.0 - progress);
  if (kind == "cosine")
    return base_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 2.0 * num_cycles * progress)));
  // polynomial (diffusers): (lr - end)·(1 - progress)^power + end, and end after total_steps.
  if (step > total_steps) return end_lr;
  return (base_lr - end_lr) * std::pow(1.0 - progress, power) + end_lr;
}

}  // namespace repa::train
