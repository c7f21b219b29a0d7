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
