#include "core/diffusion/objective.h"

#include <cmath>

#include "core/base/error.h"

namespace repa::diffusion {

ObjectiveKind objective_from_name(const std::string& name) {
  if (name == "linear") return ObjectiveKind::Linear;
  if (name == "cosine") return ObjectiveKind::Cosine;
  if (name == "vp_epsilon") return ObjectiveKind::VpEpsilon;
  if (name == "vp_v") return ObjectiveKind::VpV;
  throw InputError("studio.objective: unknown objective \"" + name +
                   "\" (expected linear, cosine, vp_epsilon or vp_v)");
}

std::string objective_name(ObjectiveKind kind) {
  switch (kind) {
    case ObjectiveKind::Linear:
      return "linear";
    case ObjectiveKind::Cosine:
      return "cosine";
    case ObjectiveKind::VpEpsilon:
      return "vp_epsilon";
    case ObjectiveKind::VpV:
      return "vp_v";
  }
  return "?";
}

TimestepSampler TimestepSampler::from_json(const nlohmann::json& config) {
  TimestepSampler s;
  std::string kind = "uniform";
  if (config.contains("studio")) kind = config.at("studio").value("timestep_sampling", kind);
  if (kind == "uniform") {
    s.kind = TimestepSampling::Uniform;
  } else if (kind == "logit_normal") {
    s.kind = TimestepSampling::LogitNormal;
  } else {
    throw InputError("studio.timestep_sampling: unknown \"" + kind + "\" (expected uniform or logit_normal)");
  }
  if (config.contains("flow_sigmoid_scale") && !config.at("flow_sigmoid_scale").is_null())
    s.logit_scale = config.at("flow_sigmoid_scale").get<double>();
  if (!(s.logit_scale > 0))
    throw InputError("flow_sigmoid_scale must be positive, got " + std::to_string(s.logit_scale));
  return s;
}

torch::Tensor TimestepSampler::sample_unit(int64_t n, const torch::Device& device) const {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  if (kind == TimestepSampling::LogitNormal) return torch::sigmoid(logit_scale * torch::randn({n}, options));
  return torch::rand({n}, options);
}

Objective::Objective(ObjectiveKind kind, VpSchedule schedule) : kind_(kind), schedule_(std::move(schedule)) {}

Objective Objective::from_json(const nlohmann::json& config) {
  std::string name = "linear";
  if (config.contains("studio")) name = config.at("studio").value("objective", name);
  return Objective(objective_from_name(name));
}

torch::Tensor Objective::sample_time(const TimestepSampler& sampler, int64_t n, const torch::Device& device) const {
  const auto u = sampler.sample_unit(n, device);
  if (is_flow()) return u;
  const int64_t steps = schedule_.num_train_timesteps;
  return torch::floor(u * steps).clamp(0, steps - 1).to(torch::kLong);
}

PathCoefficients Objective::path(const torch::Tensor& t) const {
  if (kind_ == ObjectiveKind::Linear) return {1.0 - t, t, torch::full_like(t, -1.0), torch::ones_like(t)};
  if (kind_ == ObjectiveKind::Cosine) {
    const double h = M_PI / 2;
    return {torch::cos(t * h), torch::sin(t * h), -h * torch::sin(t * h), h * torch::cos(t * h)};
  }
  throw Error("objective " + objective_name(kind_) + " is not a flow path");
}

torch::Tensor expand_like(const torch::Tensor& per_sample, const torch::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return per_sample.reshape(shape);
}

NoisedBatch Objective::noise(const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& time) const {
  if (x0.sizes() != eps.sizes())
    throw InputError("objective: latents " + c10::str(x0.sizes()) + " and noise " + c10::str(eps.sizes()) + " differ");
  if (time.dim() != 1 || time.size(0) != x0.size(0))
    throw InputError("objective: expected one time per sample (" + std::to_string(x0.size(0)) + "), got " +
                     c10::str(time.sizes()));
  NoisedBatch b;
  if (is_flow()) {
    b.t = time.to(torch::kFloat32);
    const auto c = path(expand_like(b.t, x0).to(x0.scalar_type()));
    b.x_t = c.alpha * x0 + c.sigma * eps;
    b.target = c.d_alpha * x0 + c.d_sigma * eps;
    b.timesteps = b.t * 1000.0;
    b.model_time = b.t;
    return b;
  }
  const auto k = time.to(torch::kLong);
  const auto abar = expand_like(schedule_.alpha_bar(k), x0).to(x0.scalar_type());
  const auto a = abar.sqrt(), s = (1.0 - abar).sqrt();
  b.x_t = a * x0 + s * eps;
  b.target = kind_ == ObjectiveKind::VpEpsilon ? eps : a * eps - s * x0;
  b.timesteps = k;
  b.t = k.to(torch::kFloat32) / static_cast<double>(schedule_.num_train_timesteps);
  b.model_time = k.to(torch::kFloat32);
  return b;
}

}  // namespace repa::diffusion
