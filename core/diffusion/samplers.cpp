#include "core/diffusion/samplers.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/base/error.h"

namespace repa::diffusion {
namespace {

torch::Tensor times_like(const torch::Tensor& x, double value) {
  return torch::full({x.size(0)}, value, torch::TensorOptions().dtype(x.scalar_type()).device(x.device()));
}

void require(bool ok, const std::string& message) {
  if (!ok) throw InputError(message);
}

}  // namespace

SamplerConfig SamplerConfig::from_json(const nlohmann::json& config, int64_t num_classes) {
  SamplerConfig c;
  c.null_label = num_classes;
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const auto& studio = config.contains("studio") ? config.at("studio") : kEmpty;
  const std::string kind = studio.value("sampler", std::string("euler"));
  if (kind == "euler")
    c.kind = SamplerKind::Euler;
  else if (kind == "euler_maruyama")
    c.kind = SamplerKind::EulerMaruyama;
  else if (kind == "ddim")
    c.kind = SamplerKind::Ddim;
  else if (kind == "dpmpp_2m_karras")
    c.kind = SamplerKind::DpmPP2MKarras;
  else
    throw InputError("studio.sampler: unknown \"" + kind +
                     "\" (expected euler, euler_maruyama, ddim or dpmpp_2m_karras)");
  auto number = [&](const nlohmann::json& obj, const char* key, double fallback) {
    return obj.contains(key) && !obj.at(key).is_null() ? obj.at(key).get<double>() : fallback;
  };
  c.num_steps = static_cast<int64_t>(number(config, "validation_num_inference_steps", 50));
  c.guidance_scale = number(config, "validation_guidance", 1.0);
  c.guidance_low = number(studio, "guidance_interval_low", 0.0);
  c.guidance_high = number(studio, "guidance_interval_high", 1.0);
  require(c.num_steps >= 1, "validation_num_inference_steps must be at least 1, got " + std::to_string(c.num_steps));
  require(c.guidance_low <= c.guidance_high, "studio.guidance_interval_low " + std::to_string(c.guidance_low) +
                                                 " exceeds guidance_interval_high " + std::to_string(c.guidance_high));
  return c;
}

bool guidance_active(const SamplerConfig& config, double t) {
  return config.guidance_scale > 1.0 && t <= config.guidance_high && t >= config.guidance_low;
}

torch::Tensor guided_prediction(const DenoiserFn& model, const SamplerConfig& config, const torch::Tensor& x,
                                double model_time, double t, const torch::Tensor& labels) {
  if (!guidance_active(config, t)) return model(x, times_like(x, model_time), labels).to(torch::kFloat64);
  const auto both = torch::cat({x, x}, 0);
  const auto null = torch::full_like(labels, config.null_label);
  const auto out = model(both, times_like(both, model_time), torch::cat({labels, null}, 0)).to(torch::kFloat64);
  const auto halves = out.chunk(2, 0);
  return halves[1] + config.guidance_scale * (halves[0] - halves[1]);
}

torch::Tensor euler_time_grid(int64_t num_steps) {
  return torch::linspace(1.0, 0.0, num_steps + 1, torch::kFloat64);
}

torch::Tensor euler_maruyama_time_grid(int64_t num_steps) {
  return torch::cat({torch::linspace(1.0, 0.04, num_steps, torch::kFloat64), torch::zeros({1}, torch::kFloat64)});
}

std::vector<int64_t> ddim_timesteps(int64_t num_train_timesteps, int64_t num_steps) {
  std::vector<int64_t> steps;
  const double stride = static_cast<double>(num_train_timesteps) / static_cast<double>(num_steps);
  for (int64_t i = 0; i < num_steps; ++i)
    steps.push_back(static_cast<int64_t>(std::nearbyint(num_train_timesteps - i * stride)) - 1);
  return steps;
}

torch::Tensor score_from_velocity(const Objective& objective, const torch::Tensor& v, const torch::Tensor& x,
                                  double t) {
  const auto c = objective.path(torch::full({1}, t, torch::kFloat64));
  const double alpha = c.alpha.item<double>(), sigma = c.sigma.item<double>();
  const double d_alpha = c.d_alpha.item<double>(), d_sigma = c.d_sigma.item<double>();
  // x_t = α·x0 + σ·ε and v = α'·x0 + σ'·ε give E[x0 | x_t]; the score is −(x_t − α·E[x0])/σ², written as REPA does.
  const double ratio = alpha / d_alpha;
  const double variance = sigma * sigma - ratio * d_sigma * sigma;
  return (ratio * v - x) / variance;
}

torch::Tensor euler_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                           const torch::Tensor& noise, const torch::Tensor& labels) {
  require(objective.is_flow(),
          "sampler euler needs a flow objective (linear or cosine), not " + objective_name(objective.kind()));
  torch::NoGradGuard no_grad;
  require(!config.euler_grid.defined() || config.euler_grid.numel() == config.num_steps + 1,
          "sampler euler: the time grid holds " + std::to_string(config.euler_grid.numel()) + " times for " +
              std::to_string(config.num_steps) + " steps");
  const auto grid = config.euler_grid.defined() ? config.euler_grid.to(torch::kFloat64).cpu()
                                                : euler_time_grid(config.num_steps);
  auto x = noise.to(torch::kFloat64);
  for (int64_t i = 0; i < config.num_steps; ++i) {
    const double t = grid[i].item<double>(), t_next = grid[i + 1].item<double>();
    const auto v = guided_prediction(model, config, x.to(noise.scalar_type()), t, t, labels);
    x = x + (t_next - t) * v;
  }
  return x;
}

torch::Tensor euler_maruyama_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                                    const torch::Tensor& noise, const torch::Tensor& labels) {
  require(objective.is_flow(),
          "sampler euler_maruyama needs a flow objective (linear or cosine), not " + objective_name(objective.kind()));
  require(config.num_steps >= 2,
          "sampler euler_maruyama needs at least 2 steps, got " + std::to_string(config.num_steps));
  torch::NoGradGuard no_grad;
  const auto grid = euler_maruyama_time_grid(config.num_steps);
  auto x = noise.to(torch::kFloat64);
  // Drift of the reverse SDE with diffusion g(t)² = 2t: v − ½·g²·score.
  auto drift = [&](const torch::Tensor& x_cur, double t) {
    const auto dtype = noise.scalar_type();
    if (!guidance_active(config, t)) {
      const auto v = model(x_cur.to(dtype), times_like(x_cur.to(dtype), t), labels).to(torch::kFloat64);
      return v - t * score_from_velocity(objective, v, x_cur, t);
    }
    const auto both = torch::cat({x_cur, x_cur}, 0);
    const auto v = model(both.to(dtype), times_like(both.to(dtype), t),
                         torch::cat({labels, torch::full_like(labels, config.null_label)}, 0))
                       .to(torch::kFloat64);
    const auto d = (v - t * score_from_velocity(objective, v, both, t)).chunk(2, 0);
    return d[1] + config.guidance_scale * (d[0] - d[1]);
  };
  const int64_t last = grid.size(0) - 2;  // index of t = 0.04
  for (int64_t i = 0; i < last; ++i) {
    const double t = grid[i].item<double>(), dt = grid[i + 1].item<double>() - t;
    const auto deps = torch::randn_like(x) * std::sqrt(std::abs(dt));
    x = x + drift(x, t) * dt + std::sqrt(2.0 * t) * deps;
  }
  const double t = grid[last].item<double>();
  return x + (0.0 - t) * drift(x, t);  // the last step takes the mean, no noise
}

torch::Tensor ddim_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                          const torch::Tensor& noise, const torch::Tensor& labels) {
  require(!objective.is_flow(),
          "sampler ddim needs a VP objective (vp_epsilon or vp_v), not " + objective_name(objective.kind()));
  torch::NoGradGuard no_grad;
  const auto& schedule = objective.schedule();
  const int64_t total = schedule.num_train_timesteps;
  require(config.num_steps <= total, "DDIM: " + std::to_string(config.num_steps) + " steps exceed the " +
                                         std::to_string(total) + " training timesteps");
  const auto steps = ddim_timesteps(total, config.num_steps);
  const auto abar = schedule.alphas_cumprod.to(torch::kFloat64);
  auto x = noise.to(torch::kFloat64);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const int64_t k = steps[i];
    const double a = abar[k].item<double>();
    // The last step lands on ᾱ = 1, i.e. returns the predicted x0 (diffusers' set_alpha_to_one).
    const double a_prev = i + 1 < steps.size() ? abar[steps[i + 1]].item<double>() : 1.0;
    const auto out = guided_prediction(model, config, x.to(noise.scalar_type()), static_cast<double>(k),
                                       static_cast<double>(k) / total, labels);
    torch::Tensor x0, eps;
    if (objective.kind() == ObjectiveKind::VpEpsilon) {
      eps = out;
      x0 = (x - std::sqrt(1 - a) * eps) / std::sqrt(a);
    } else {
      x0 = std::sqrt(a) * x - std::sqrt(1 - a) * out;
      eps = std::sqrt(a) * out + std::sqrt(1 - a) * x;
    }
    x = std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev) * eps;
  }
  return x;
}

torch::Tensor karras_sigmas(double sigma_min, double sigma_max, int64_t num_steps, double rho) {
  const auto ramp = torch::linspace(0.0, 1.0, num_steps, torch::kFloat64);
  const double min_inv = std::pow(sigma_min, 1.0 / rho), max_inv = std::pow(sigma_max, 1.0 / rho);
  return (max_inv + ramp * (min_inv - max_inv)).pow(rho);
}

torch::Tensor vp_sigmas(const VpSchedule& schedule) {
  const auto abar = schedule.alphas_cumprod.to(torch::kFloat64);
  return ((1 - abar) / abar).sqrt();
}

double sigma_to_timestep(double sigma, const torch::Tensor& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const auto ls = log_sigmas.contiguous();
  const double* l = ls.data_ptr<double>();
  const int64_t n = ls.numel();
  // The last index whose log σ is at or below log_sigma (the schedule rises with k), kept below n − 1.
  int64_t low = 0;
  for (int64_t k = 0; k < n; ++k)
    if (log_sigma - l[k] >= 0) low = k;
  low = std::min(low, n - 2);
  const double w = std::clamp((l[low] - log_sigma) / (l[low] - l[low + 1]), 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

std::pair<torch::Tensor, std::vector<int64_t>> dpmpp_karras_grid(const VpSchedule& schedule, int64_t num_steps) {
  const auto sigmas = vp_sigmas(schedule);
  const auto log_sigmas = sigmas.log();
  auto karras = karras_sigmas(sigmas[0].item<double>(), sigmas[-1].item<double>(), num_steps);
  std::vector<int64_t> timesteps;
  for (int64_t i = 0; i < num_steps; ++i)
    timesteps.push_back(static_cast<int64_t>(std::nearbyint(sigma_to_timestep(karras[i].item<double>(), log_sigmas))));
  // diffusers stores the grid in fp32.
  karras = torch::cat({karras, torch::zeros({1}, torch::kFloat64)}).to(torch::kFloat32).to(torch::kFloat64);
  return {karras, timesteps};
}

torch::Tensor dpmpp_2m_karras_sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                                     const torch::Tensor& noise, const torch::Tensor& labels) {
  require(!objective.is_flow(), "sampler dpmpp_2m_karras needs a VP objective (vp_epsilon or vp_v), not " +
                                    objective_name(objective.kind()));
  torch::NoGradGuard no_grad;
  const auto& schedule = objective.schedule();
  const int64_t total = schedule.num_train_timesteps;
  const auto [sigmas, timesteps] = dpmpp_karras_grid(schedule, config.num_steps);
  // VP coefficients of a Karras sigma: α = 1/√(1 + σ²), σ_vp = σ·α; λ = log α − log σ_vp = −log σ.
  auto x = noise.to(torch::kFloat64);
  torch::Tensor previous_x0;
  double previous_lambda = 0;
  for (int64_t i = 0; i < config.num_steps; ++i) {
    const double s = sigmas[i].item<double>(), s_next = sigmas[i + 1].item<double>();
    const double alpha = 1 / std::sqrt(1 + s * s), sigma_vp = s * alpha;
    const auto out = guided_prediction(model, config, x.to(noise.scalar_type()), static_cast<double>(timesteps[i]),
                                       static_cast<double>(timesteps[i]) / total, labels);
    const auto x0 = objective.kind() == ObjectiveKind::VpEpsilon ? (x - sigma_vp * out) / alpha
                                                                  : alpha * x - sigma_vp * out;
    if (s_next == 0) {
      x = x0;  // the first-order step onto σ = 0 returns the denoised sample
      break;
    }
    const double alpha_next = 1 / std::sqrt(1 + s_next * s_next), sigma_vp_next = s_next * alpha_next;
    const double lambda = -std::log(s), lambda_next = -std::log(s_next);
    const double h = lambda_next - lambda;
    const double factor = -alpha_next * std::expm1(-h);  // −α_t (e^{−h} − 1)
    auto d = x0;
    if (previous_x0.defined()) {
      // Second order from the last two denoised samples: D = x0 + (x0 − x0_prev) / (2 r), r = h_prev / h.
      const double r = (lambda - previous_lambda) / h;
      d = x0 + (x0 - previous_x0) / (2 * r);
    }
    x = (sigma_vp_next / sigma_vp) * x + factor * d;
    previous_x0 = x0;
    previous_lambda = lambda;
  }
  return x;
}

torch::Tensor sample(const DenoiserFn& model, const Objective& objective, const SamplerConfig& config,
                     const torch::Tensor& noise, const torch::Tensor& labels) {
  switch (config.kind) {
    case SamplerKind::Euler:
      return euler_sample(model, objective, config, noise, labels);
    case SamplerKind::EulerMaruyama:
      return euler_maruyama_sample(model, objective, config, noise, labels);
    case SamplerKind::Ddim:
      return ddim_sample(model, objective, config, noise, labels);
    case SamplerKind::DpmPP2MKarras:
      return dpmpp_2m_karras_sample(model, objective, config, noise, labels);
  }
  throw Error("unknown sampler");
}

}  // namespace repa::diffusion
