// The discrete VP (DDPM) noise schedule of Stable Diffusion: "scaled_linear" betas, 1000 steps.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace repa::diffusion {

struct VpSchedule {
  // β_i = (√β_start + i/(T−1)·(√β_end − √β_start))², ᾱ_i = Π_{j≤i}(1 − β_j); fp32 like diffusers.
  static VpSchedule scaled_linear(int64_t num_train_timesteps = 1000, double beta_start = 0.00085,
                                  double beta_end = 0.012);

  // A diffusers DDPM/Euler scheduler_config.json: num_train_timesteps, beta_start, beta_end and beta_schedule
  // ("scaled_linear" or "linear"); absent keys take SD's values. rescale_betas_zero_snr from the config, or
  // forced by the caller (SimpleTuner forces it for SD 2.x). InputError naming the key for other schedules.
  static VpSchedule from_scheduler_config(const nlohmann::json& scheduler, bool force_zero_terminal_snr = false);
  // diffusers' rescale_zero_terminal_snr (Lin et al. 2023, Algorithm 1): √ᾱ shifted so that the last step has
  // SNR 0 and scaled to keep the first step's value; betas recomputed from the new ᾱ.
  VpSchedule rescaled_zero_terminal_snr() const;
  bool zero_terminal_snr = false;

  // ᾱ at integer timesteps (any device; values in fp32 on that device).
  torch::Tensor alpha_bar(const torch::Tensor& timesteps) const;
  // SNR = ᾱ / (1 − ᾱ) (SimpleTuner's compute_snr: (√ᾱ / √(1 − ᾱ))²).
  torch::Tensor snr(const torch::Tensor& timesteps) const;

  int64_t num_train_timesteps = 0;
  torch::Tensor betas;           // (T,) fp32, CPU
  torch::Tensor alphas_cumprod;  // (T,) fp32, CPU
};

}  // namespace repa::diffusion
