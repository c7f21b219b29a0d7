// Samplers from noise to data, with classifier-free guidance inside a guidance interval:
//   euler           : the probability-flow ODE, t = 1 → 0 in num_steps equal steps (flow objectives)
//   euler_maruyama  : REPA's SDE sampler — t from 1 to 0.04 in num_steps − 1 stochastic steps, then one
//                     deterministic step to 0 (flow objectives)
//   ddim            : deterministic DDIM (η = 0) on "trailing" timesteps for ε- and v-prediction (VP)
//   dpmpp_2m_karras : DPM-Solver++(2M) on Karras sigmas for ε- and v-prediction (VP), as diffusers'
//                     DPMSolverMultistepScheduler(use_karras_sigmas, final_sigmas_type "zero") steps it
// All integrate in fp64 and call the model in the noise's dtype, as REPA's samplers do.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/diffusion/objective.h"

namespace repa::diffusion {

// The network: (x (N, ...), model_time (N,), labels (N,)) → prediction (velocity, ε or v per objective).
using DenoiserFn =
    std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& model_time, const torch::Tensor& labels)>;

enum class SamplerKind { Euler, EulerMaruyama, Ddim, DpmPP2MKarras };

struct SamplerConfig {
  SamplerKind kind = SamplerKind::Euler;
  int64_t num_steps = 50;
  double guidance_scale = 1.0;  // CFG applies when > 1
  double guidance_low = 0.0;    // ... and low <= t <= high (t ∈ [0, 1]; VP: k / T)
  double guidance_high = 1.0;
  int64_t null_label = 1000;  // the label embedder's null class (= num_classes)
  // euler: the num_steps + 1 times to step through, 1 → 0 (a flow family's pipeline scheduler sigmas, fp64);
  // undefined: equal steps.
  torch::Tensor euler_grid;
  // studio.sampler, validation_num_inference_steps, validation_guidance, studio.guidance_interval_low/high.
  static SamplerConfig from_json(const nlohmann::json& config, int64_t num_classes);
};

// Whether guidance applies at time t (REPA's rule: scale > 1 and low <= t <= high).
bool guidance_active(const SamplerConfig& config, double t);

// Runs the model once, on [x; x] with [labels; null] when guidance is active, and returns
// uncond + scale·(cond − uncond) in fp64; otherwise the plain prediction in fp64.
torch::Tensor guided_prediction(const DenoiserFn& model, const SamplerConfig& config, const torch::Tensor& x,
                                double model_time, double t, const torch::Tensor& labels);

// The time grids (fp64): euler 1 → 0 in num_steps; euler_maruyama num_steps from 1 to 0.04, then 0.
torch::Tensor euler_time_grid(int64_t num_steps);
torch::Tensor euler_maruyama_time_grid(int64_t num_steps);
// DDIM "trailing" steps: round(T − i·T/n) − 1 for i = 0..n−1.
std::vector<int64_t> ddim_timesteps(int64_t num_train_timesteps, int64_t num_steps);
// Karras et al. (2022): (σ_max^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for i = 0..n−1, fp64.
torch::Tensor karras_sigmas(double sigma_min, double sigma_max, int64_t num_steps, double rho = 7.0);
// The VP schedule's σ_k = √((1 − ᾱ_k)/ᾱ_k), k = 0..T−1, fp64.
torch::Tensor vp_sigmas(const VpSchedule& schedule);
// diffusers' _sigma_to_t: the fractional timestep whose log σ interpolates linearly to log `sigma`.
double sigma_to_timestep(double sigma, const torch::Tensor& log_sigmas);
// The DPM++ 2M Karras grid: n Karras sigmas between the schedule's ends, then 0 (fp64), and the model
// timesteps round(t(σ)) for the first n.
std::pair<torch::Tensor, std::vector<int64_t>> dpmpp_karras_grid(const VpSchedule& schedule, int64_t num_steps);

// Score of the flow path's marginal from a velocity prediction (REPA's get_score_from_velocity).
torch::Tensor score_from_velocity(const Objective& objective, const torch::Tensor& v, const torch::Tensor& x, double t);

torch::Tensor euler_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                           const torch::Tensor& noise, const torch::Tensor& labels);
torch::Tensor euler_maruyama_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                                    const torch::Tensor& noise, const torch::Tensor& labels);
torch::Tensor ddim_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                          const torch::Tensor& noise, const torch::Tensor& labels);
// Starts from `noise` as the VP latent at the first sigma (diffusers' init_noise_sigma = 1).
torch::Tensor dpmpp_2m_karras_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                                     const torch::Tensor& noise, const torch::Tensor& labels);

// Dispatches on config.kind; throws InputError when the sampler does not fit the objective. Returns
// fp64 samples.
torch::Tensor sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                     const torch::Tensor& noise, const torch::Tensor& labels);

}  // namespace repa::diffusion
