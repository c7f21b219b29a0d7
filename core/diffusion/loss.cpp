#include "core/diffusion/loss.h"

#include <cmath>
#include <vector>

#include "core/base/error.h"

namespace repa::diffusion {

LossConfig LossConfig::from_json(const nlohmann::json& config) {
  LossConfig c;
  auto text = [&](const char* key, const std::string& fallback) {
    return config.contains(key) && !config.at(key).is_null() ? config.at(key).get<std::string>() : fallback;
  };
  const auto type = text("loss_type", "l2");
  if (type == "l2")
    c.type = LossType::L2;
  else if (type == "huber")
    c.type = LossType::Huber;
  else if (type == "smooth_l1")
    c.type = LossType::SmoothL1;
  else
    throw InputError("loss_type: unknown \"" + type + "\" (expected l2, huber or smooth_l1)");
  const auto schedule = text("huber_schedule", "snr");
  if (schedule == "snr")
    c.huber_schedule = HuberSchedule::Snr;
  else if (schedule == "exponential")
    c.huber_schedule = HuberSchedule::Exponential;
  else if (schedule == "constant")
    c.huber_schedule = HuberSchedule::Constant;
  else
    throw InputError("huber_schedule: unknown \"" + schedule + "\" (expected snr, exponential or constant)");
  if (config.contains("huber_c") && !config.at("huber_c").is_null()) c.huber_c = config.at("huber_c").get<double>();
  if (!(c.huber_c > 0)) throw InputError("huber_c must be positive, got " + std::to_string(c.huber_c));
  if (config.contains("snr_gamma") && !config.at("snr_gamma").is_null()) {
    const double gamma = config.at("snr_gamma").get<double>();
    if (gamma < 0) throw InputError("snr_gamma must be >= 0, got " + std::to_string(gamma));
    if (gamma > 0) c.snr_gamma = gamma;
  }
  if (config.contains("snr_weight") && !config.at("snr_weight").is_null())
    c.snr_weight = config.at("snr_weight").get<double>();
  return c;
}

torch::Tensor scheduled_huber_c(const LossConfig& config, const Objective& objective, const torch::Tensor& timesteps) {
  const auto ts = timesteps.to(torch::kFloat32);
  const double c = config.huber_c;
  switch (config.huber_schedule) {
    case HuberSchedule::Constant:
      return torch::full_like(ts, c);
    case HuberSchedule::Exponential: {
      // c at the noisiest step, 1 at step 0: exp(−α·k), α = −ln(c)/T.
      const double alpha = -std::log(c) / static_cast<double>(objective.schedule().num_train_timesteps);
      return torch::exp(-alpha * ts);
    }
    case HuberSchedule::Snr: {
      torch::Tensor s;
      if (objective.is_flow()) {
        // SimpleTuner's flow-matching form: σ = k/1000, s = √((1 − σ)/(σ + 1e-4)).
        const auto sigma = ts / 1000.0;
        s = ((1.0 - sigma) / (sigma + 1e-4)).sqrt();
      } else {
        const auto abar = objective.schedule().alpha_bar(timesteps);
        s = ((1.0 - abar) / abar).sqrt();
      }
      return (1.0 - c) / (1.0 + s).pow(2) + c;
    }
  }
  return torch::full_like(ts, c);
}

torch::Tensor elementwise_loss(const torch::Tensor& prediction, const torch::Tensor& target, LossType type,
                               const torch::Tensor& huber_c) {
  if (prediction.sizes() != target.sizes())
    throw InputError("diffusion loss: prediction " + c10::str(prediction.sizes()) + " and target " +
                     c10::str(target.sizes()) + " differ");
  const auto diff2 = (prediction.to(torch::kFloat32) - target.to(torch::kFloat32)).pow(2);
  if (type == LossType::L2) return diff2;
  const auto c = expand_like(huber_c.to(diff2.device(), torch::kFloat32), diff2);
  const auto pseudo = torch::sqrt(diff2 + c * c) - c;
  return type == LossType::Huber ? 2.0 * c * pseudo : 2.0 * pseudo;
}

torch::Tensor min_snr_weights(const Objective& objective, const torch::Tensor& timesteps, double gamma) {
  if (objective.is_flow())
    throw InputError("snr_gamma: min-SNR weighting needs a VP objective (vp_epsilon or vp_v), not " +
                     objective_name(objective.kind()));
  const auto snr = objective.schedule().snr(timesteps);
  const auto clipped = torch::clamp_max(snr, gamma);
  return objective.kind() == ObjectiveKind::VpV ? clipped / (snr + 1.0) : clipped / snr;
}

DiffusionLoss diffusion_loss(const LossConfig& config, const Objective& objective, const torch::Tensor& prediction,
                             const NoisedBatch& batch) {
  const bool huber = config.type != LossType::L2;
  const auto c =
      huber ? scheduled_huber_c(config, objective, batch.timesteps) : torch::full({prediction.size(0)}, config.huber_c);
  auto loss = elementwise_loss(prediction, batch.target, config.type, c);
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < loss.dim(); ++d) dims.push_back(d);
  auto per_sample = dims.empty() ? loss : loss.mean(dims);
  // SimpleTuner: flow paths take no SNR weighting; VP takes min-SNR when snr_gamma is set, else the
  // plain L2 is scaled by snr_weight.
  if (!objective.is_flow()) {
    if (config.snr_gamma)
      per_sample = per_sample * min_snr_weights(objective, batch.timesteps, *config.snr_gamma).to(per_sample.device());
    else if (!huber)
      per_sample = per_sample * config.snr_weight;
  }
  return {per_sample.mean(), per_sample};
}

}  // namespace repa::diffusion
