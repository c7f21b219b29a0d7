#include "core/diffusion/vp_schedule.h"

#include <cmath>
#include <string>

#include "core/base/error.h"

namespace repa::diffusion {

VpSchedule VpSchedule::scaled_linear(int64_t steps, double beta_start, double beta_end) {
  if (steps < 2) throw InputError("VP schedule: num_train_timesteps must be at least 2, got " + std::to_string(steps));
  VpSchedule s;
  s.num_train_timesteps = steps;
  s.betas = torch::linspace(std::sqrt(beta_start), std::sqrt(beta_end), steps, torch::kFloat32).pow(2);
  s.alphas_cumprod = torch::cumprod(1.0 - s.betas, 0);
  return s;
}

VpSchedule VpSchedule::from_scheduler_config(const nlohmann::json& scheduler, bool force_zero_terminal_snr) {
  auto number = [&](const char* key, double fallback) {
    const auto it = scheduler.find(key);
    if (it == scheduler.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw InputError(std::string("scheduler_config.json: '") + key + "' must be a number");
    return it->get<double>();
  };
  const auto steps = static_cast<int64_t>(number("num_train_timesteps", 1000));
  const double start = number("beta_start", 0.00085), end = number("beta_end", 0.012);
  std::string kind = "scaled_linear";
  if (auto it = scheduler.find("beta_schedule"); it != scheduler.end() && it->is_string()) kind = it->get<std::string>();
  VpSchedule s;
  if (kind == "scaled_linear") {
    s = scaled_linear(steps, start, end);
  } else if (kind == "linear") {
    s = scaled_linear(steps, start, end);
    s.betas = torch::linspace(start, end, steps, torch::kFloat32);
    s.alphas_cumprod = torch::cumprod(1.0 - s.betas, 0);
  } else {
    throw InputError("scheduler_config.json: beta_schedule '" + kind +
                     "' is not one the studio trains with (scaled_linear, linear)");
  }
  bool rescale = force_zero_terminal_snr;
  if (auto it = scheduler.find("rescale_betas_zero_snr"); it != scheduler.end() && it->is_boolean())
    rescale = rescale || it->get<bool>();
  return rescale ? s.rescaled_zero_terminal_snr() : s;
}

VpSchedule VpSchedule::rescaled_zero_terminal_snr() const {
  auto sqrt_bar = torch::sqrt(torch::cumprod(1.0 - betas, 0));
  const auto first = sqrt_bar[0].clone(), last = sqrt_bar[-1].clone();
  sqrt_bar = (sqrt_bar - last) * (first / (first - last));
  const auto bar = sqrt_bar.pow(2);
  const auto alphas = torch::cat({bar.slice(0, 0, 1), bar.slice(0, 1) / bar.slice(0, 0, -1)});
  VpSchedule s;
  s.num_train_timesteps = num_train_timesteps;
  s.betas = 1.0 - alphas;
  s.alphas_cumprod = torch::cumprod(alphas, 0);
  s.zero_terminal_snr = true;
  return s;
}

torch::Tensor VpSchedule::alpha_bar(const torch::Tensor& timesteps) const {
  const auto index = timesteps.to(torch::kLong);
  if (index.numel() > 0 && (index.min().item<int64_t>() < 0 || index.max().item<int64_t>() >= num_train_timesteps))
    throw InputError("VP schedule: timestep outside [0, " + std::to_string(num_train_timesteps - 1) + "]");
  return alphas_cumprod.to(timesteps.device()).index({index});
}

torch::Tensor VpSchedule::snr(const torch::Tensor& timesteps) const {
  const auto a = alpha_bar(timesteps);
  return a / (1.0 - a);
}

}  // namespace repa::diffusion
