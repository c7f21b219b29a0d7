// The discrete VP (DDPM) noise schedule of Stable Diffusion: "scaled_linear" betas, 1000 steps.
#pragma once
#include <torch/torch.h>

namespace repa::diffusion {

struct VpSchedule {
  // β_i = (√β_start + i/(T−1)·(√β_end − √β_start))², ᾱ_i = Π_{j≤i}(1 − β_j); fp32 like diffusers.
  static VpSchedule scaled_linear(int64_t num_train_timesteps = 1000, double beta_start = 0.00085,
                                  double beta_end = 0.012);

  // ᾱ at integer timesteps (any device; values in fp32 on that device).
  torch::Tensor alpha_bar(const torch::Tensor& timesteps) const;
  // SNR = ᾱ / (1 − ᾱ) (SimpleTuner's compute_snr: (√ᾱ / √(1 − ᾱ))²).
  torch::Tensor snr(const torch::Tensor& timesteps) const;

  int64_t num_train_timesteps = 0;
  torch::Tensor betas;           // (T,) fp32, CPU
  torch::Tensor alphas_cumprod;  // (T,) fp32, CPU
};

}  // namespace repa::diffusion
