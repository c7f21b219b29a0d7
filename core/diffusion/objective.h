// Training objectives: what the model sees (x_t), what it regresses (the target), and at which time.
//   linear  (SiT/REPA): x_t = (1 − t)·x + t·ε, target ε − x (the velocity), t ∈ [0, 1], 1 = noise
//   cosine            : x_t = cos(πt/2)·x + sin(πt/2)·ε, target (π/2)(cos(πt/2)·ε − sin(πt/2)·x)
//   vp_epsilon / vp_v : x_t = √ᾱ_k·x + √(1 − ᾱ_k)·ε at integer step k, target ε or v = √ᾱ_k·ε − √(1 − ᾱ_k)·x
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/diffusion/vp_schedule.h"

namespace repa::diffusion {

enum class ObjectiveKind { Linear, Cosine, VpEpsilon, VpV };
ObjectiveKind objective_from_name(const std::string& name);  // "linear" "cosine" "vp_epsilon" "vp_v"
std::string objective_name(ObjectiveKind kind);

enum class TimestepSampling { Uniform, LogitNormal };

// How training times are drawn: u ~ U(0, 1), or u = sigmoid(scale·n), n ~ N(0, 1) (SimpleTuner's
// flow sampling with flow_sigmoid_scale).
struct TimestepSampler {
  TimestepSampling kind = TimestepSampling::Uniform;
  double logit_scale = 1.0;
  // studio.timestep_sampling and flow_sigmoid_scale.
  static TimestepSampler from_json(const nlohmann::json& config);
  torch::Tensor sample_unit(int64_t n, const torch::Device& device = torch::kCPU) const;  // (n,) fp32 in (0, 1)
};

// α_t, σ_t and their time derivatives for the flow paths, each shaped like t.
struct PathCoefficients {
  torch::Tensor alpha, sigma, d_alpha, d_sigma;
};

struct NoisedBatch {
  torch::Tensor x_t;         // the model's input
  torch::Tensor target;      // what the model regresses
  torch::Tensor t;           // (N,) fp32 noise level in [0, 1] (VP: k / T)
  torch::Tensor timesteps;   // (N,) SimpleTuner's scale: 1000·t for flow paths, the integer step k for VP
  torch::Tensor model_time;  // (N,) what the backbone's time embedder gets: t (flow) or k as a float (VP)
};

class Objective {
 public:
  explicit Objective(ObjectiveKind kind, VpSchedule schedule = VpSchedule::scaled_linear());
  static Objective from_json(const nlohmann::json& config);  // studio.objective

  ObjectiveKind kind() const { return kind_; }
  bool is_flow() const { return kind_ == ObjectiveKind::Linear || kind_ == ObjectiveKind::Cosine; }
  const VpSchedule& schedule() const { return schedule_; }

  // Training times for a batch: t ∈ (0, 1) for flow paths, integer steps ⌊u·T⌋ (long) for VP.
  torch::Tensor sample_time(const TimestepSampler& sampler, int64_t n, const torch::Device& device = torch::kCPU) const;
  // Flow paths only: α, σ, α', σ' at t (any shape).
  PathCoefficients path(const torch::Tensor& t) const;
  // x0 and noise (N, ...); time (N,) as sample_time returns it.
  NoisedBatch noise(const torch::Tensor& x0, const torch::Tensor& noise, const torch::Tensor& time) const;

 private:
  ObjectiveKind kind_;
  VpSchedule schedule_;
};

// A per-sample (N,) tensor reshaped to broadcast against `like` (N, ...).
torch::Tensor expand_like(const torch::Tensor& per_sample, const torch::Tensor& like);

}  // namespace repa::diffusion
