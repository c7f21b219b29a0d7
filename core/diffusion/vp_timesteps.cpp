#include "core/diffusion/vp_timesteps.h"

#include "core/base/error.h"

namespace repa::diffusion {

namespace {

double number(const nlohmann::json& config, const char* key, double fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw InputError(std::string(key) + " must be a number");
  return it->get<double>();
}

bool flag(const nlohmann::json& config, const char* key, bool fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw InputError(std::string(key) + " must be true or false");
  return it->get<bool>();
}

}  // namespace

VpTimestepSampler VpTimestepSampler::from_config(const nlohmann::json& config, int64_t steps) {
  VpTimestepSampler s;
  s.steps_ = steps;
  s.segmented_ = !flag(config, "disable_segmented_timestep_sampling", false);
  s.weights_ = torch::ones({steps}, torch::kFloat32);
  std::string strategy = "none";
  if (auto it = config.find("timestep_bias_strategy"); it != config.end() && it->is_string()) strategy = it->get<std::string>();
  if (strategy == "none") return s;
  // Python's int(): truncation toward zero.
  const auto count = static_cast<int64_t>(number(config, "timestep_bias_portion", 0.25) * static_cast<double>(steps));
  int64_t begin = 0, end = steps;
  if (strategy == "later") {
    begin = count == 0 ? 0 : steps - count;  // slice(-0, None) is the whole schedule, as in SimpleTuner
  } else if (strategy == "earlier") {
    end = count;
  } else if (strategy == "range") {
    begin = static_cast<int64_t>(number(config, "timestep_bias_begin", 0));
    end = static_cast<int64_t>(number(config, "timestep_bias_end", 1000));
    if (begin < 0) throw InputError("timestep_bias_begin must be 0 or more for timestep_bias_strategy 'range'");
    if (end > steps)
      throw InputError("timestep_bias_end must not exceed the schedule's " + std::to_string(steps) + " timesteps");
  } else {
    // SimpleTuner treats any other string as none; a typo should not pass unnoticed.
    throw InputError("timestep_bias_strategy '" + strategy + "' is unknown (earlier, later, range, none)");
  }
  const double multiplier = number(config, "timestep_bias_multiplier", 1.0);
  if (multiplier <= 0)
    throw InputError("timestep_bias_multiplier must be positive; to turn the bias off use timestep_bias_strategy none");
  begin = std::clamp<int64_t>(begin, 0, steps);
  end = std::clamp<int64_t>(end, 0, steps);
  if (end > begin) s.weights_.slice(0, begin, end).mul_(multiplier);
  s.weights_ /= s.weights_.sum();
  return s;
}

torch::Tensor VpTimestepSampler::sample(int64_t n) const {
  if (!segmented_ || n <= 1) return torch::multinomial(weights_, n, /*replacement=*/true).to(torch::kLong);
  // One timestep per segment, from the last timestep down. As in SimpleTuner, each segment's weights are
  // normalised in place, and neighbouring segments share their boundary timestep, which therefore carries the
  // earlier segment's normalisation into the next.
  auto weights = weights_.clone();
  const int64_t start_timestep = steps_ - 1, end_timestep = 0;
  const int64_t segment = std::max<int64_t>(steps_ / n, 1);
  auto out = torch::empty({n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t start = start_timestep - i * segment;
    const int64_t end = i != n - 1 ? std::max(start - segment, end_timestep) : end_timestep;
    auto segment_weights = weights.slice(0, end, start + 1);
    segment_weights.div_(segment_weights.sum());
    out[i] = end + torch::multinomial(segment_weights, 1).item<int64_t>();
  }
  return out;
}

VpNoiseSettings VpNoiseSettings::from_config(const nlohmann::json& config) {
  VpNoiseSettings s;
  s.offset = flag(config, "offset_noise", false);
  s.offset_strength = number(config, "noise_offset", 0.1);
  s.offset_probability = number(config, "noise_offset_probability", 0.25);
  s.input_perturbation = number(config, "input_perturbation", 0.0);
  s.input_perturbation_steps = static_cast<int64_t>(number(config, "input_perturbation_steps", 0));
  if (s.offset_probability < 0 || s.offset_probability > 1)
    throw InputError("noise_offset_probability must be within [0, 1]");
  if (s.input_perturbation < 0) throw InputError("input_perturbation must be 0 or more");
  return s;
}

torch::Tensor VpNoiseSettings::offset_noise(const torch::Tensor& noise) const {
  if (!offset) return noise;
  if (offset_probability < 1.0 && torch::rand({1}).item<double>() >= offset_probability) return noise;
  return noise + offset_strength * torch::randn({noise.size(0), noise.size(1), 1, 1}, noise.options());
}

torch::Tensor VpNoiseSettings::input_noise(const torch::Tensor& noise, int64_t step) const {
  if (input_perturbation == 0.0) return noise;
  if (input_perturbation_steps > 0 && step >= input_perturbation_steps) return noise;
  double strength = input_perturbation;
  if (input_perturbation_steps > 0)
    strength *= 1.0 - static_cast<double>(step) / static_cast<double>(input_perturbation_steps);
  return noise + strength * torch::randn_like(noise);
}

}  // namespace repa::diffusion
