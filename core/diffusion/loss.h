// The diffusion loss as SimpleTuner computes it (loss_type, huber_schedule, huber_c, snr_gamma,
// snr_weight); formulas in docs/diffusion.md.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/diffusion/objective.h"

namespace repa::diffusion {

enum class LossType { L2, Huber, SmoothL1 };
enum class HuberSchedule { Snr, Exponential, Constant };

struct LossConfig {
  LossType type = LossType::L2;
  HuberSchedule huber_schedule = HuberSchedule::Snr;
  double huber_c = 0.1;
  std::optional<double> snr_gamma;  // unset or 0: no min-SNR weighting
  double snr_weight = 1.0;          // SimpleTuner scales the plain VP L2 loss by it
  static LossConfig from_json(const nlohmann::json& config);
};

// Per-sample huber_c (N,) at SimpleTuner-scale timesteps (see NoisedBatch::timesteps).
torch::Tensor scheduled_huber_c(const LossConfig& config, const Objective& objective, const torch::Tensor& timesteps);

// Element-wise loss: l2 (p − y)²; huber 2c(√((p − y)² + c²) − c); smooth_l1 2(√((p − y)² + c²) − c),
// with c broadcast per sample.
torch::Tensor elementwise_loss(const torch::Tensor& prediction, const torch::Tensor& target, LossType type,
                               const torch::Tensor& huber_c);

// min(SNR, γ)/SNR for ε-prediction, min(SNR, γ)/(SNR + 1) for v-prediction (VP objectives only).
torch::Tensor min_snr_weights(const Objective& objective, const torch::Tensor& timesteps, double gamma);

struct DiffusionLoss {
  torch::Tensor loss;        // scalar: mean over the batch
  torch::Tensor per_sample;  // (N,): mean over each sample's elements, weighted
};

DiffusionLoss diffusion_loss(const LossConfig& config, const Objective& objective, const torch::Tensor& prediction,
                             const NoisedBatch& batch);

}  // namespace repa::diffusion
