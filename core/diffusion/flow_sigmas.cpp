#include "core/diffusion/flow_sigmas.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/base/error.h"

namespace repa::diffusion {
namespace {

bool flag(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || config.at(key).is_null()) return false;
  const auto& v = config.at(key);
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s == "true" || s == "True" || s == "1") return true;
    if (s == "false" || s == "False" || s == "0" || s.empty()) return false;
  }
  throw InputError(std::string(key) + ": expected true or false");
}

double number(const nlohmann::json& config, const char* key, double fallback) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  const auto& v = config.at(key);
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    try {
      std::size_t used = 0;
      const double d = std::stod(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return d;
    } catch (const std::exception&) {
    }
  }
  throw InputError(std::string(key) + ": expected a number");
}

bool is_unset(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || config.at(key).is_null()) return true;
  const auto& v = config.at(key);
  if (!v.is_string()) return false;
  const auto s = v.get<std::string>();
  return s.empty() || s == "None" || s == "none";
}

// Splits "0.1, 0.5; 0.9" into numbers; a piece that is not a number is an error naming `key`.
std::vector<double> split_numbers(const std::string& text, const std::string& key) {
  std::string normalised = text;
  std::replace(normalised.begin(), normalised.end(), ';', ',');
  std::vector<double> values;
  std::stringstream stream(normalised);
  std::string piece;
  while (std::getline(stream, piece, ',')) {
    const auto first = piece.find_first_not_of(" \t");
    if (first == std::string::npos) throw InputError(key + " contains an empty value");
    const auto last = piece.find_last_not_of(" \t");
    const auto trimmed = piece.substr(first, last - first + 1);
    try {
      std::size_t used = 0;
      const double d = std::stod(trimmed, &used);
      if (used != trimmed.size()) throw std::invalid_argument(trimmed);
      values.push_back(d);
    } catch (const std::exception&) {
      throw InputError(key + ": \"" + trimmed + "\" is not a number");
    }
  }
  return values;
}

// A JSON list, a single number or a string holding either; elements must be numbers.
std::vector<double> numbers_of(const nlohmann::json& value, const std::string& key) {
  nlohmann::json parsed = value;
  if (value.is_string()) {
    const auto text = value.get<std::string>();
    parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_discarded()) return split_numbers(text, key);
  }
  if (parsed.is_number()) return {parsed.get<double>()};
  if (!parsed.is_array()) throw InputError(key + " must be a JSON array or a comma-separated list of numbers");
  std::vector<double> values;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (!parsed[i].is_number()) throw InputError(key + "[" + std::to_string(i) + "] must be numeric");
    values.push_back(parsed[i].get<double>());
  }
  return values;
}

// SimpleTuner's PCHIP end-point slope with its shape-preserving clamps.
torch::Tensor end_slope(const torch::Tensor& d0, const torch::Tensor& d1) {
  auto slope = (3.0 * d0 - d1) / 2.0;
  slope = torch::where(torch::sign(slope) != torch::sign(d0), torch::zeros_like(slope), slope);
  slope = torch::where((torch::sign(d0) != torch::sign(d1)) & (slope.abs() > 3.0 * d0.abs()), 3.0 * d0, slope);
  return slope;
}

}  // namespace

FlowShiftSettings FlowShiftSettings::from_scheduler_config(const nlohmann::json& c) {
  FlowShiftSettings s;
  auto read_int = [&](const char* key, int64_t& out) {
    if (c.contains(key) && c.at(key).is_number()) out = c.at(key).get<int64_t>();
  };
  auto read_double = [&](const char* key, double& out) {
    if (c.contains(key) && c.at(key).is_number()) out = c.at(key).get<double>();
  };
  read_int("base_image_seq_len", s.base_image_seq_len);
  read_int("max_image_seq_len", s.max_image_seq_len);
  read_double("base_shift", s.base_shift);
  read_double("max_shift", s.max_shift);
  read_int("patch_size", s.patch_size);
  if (s.patch_size <= 0) s.patch_size = 2;  // SimpleTuner's fallback for a missing or bad patch size
  if (s.max_image_seq_len == s.base_image_seq_len)
    throw InputError("scheduler config: max_image_seq_len equals base_image_seq_len (" +
                     std::to_string(s.base_image_seq_len) + "); the resolution-dependent shift needs two points");
  return s;
}

double flow_shift_mu(int64_t image_seq_len, const FlowShiftSettings& s) {
  const double m = (s.max_shift - s.base_shift) / static_cast<double>(s.max_image_seq_len - s.base_image_seq_len);
  const double b = s.base_shift - m * static_cast<double>(s.base_image_seq_len);
  return static_cast<double>(image_seq_len) * m + b;
}

torch::Tensor shift_sigmas(const torch::Tensor& sigmas, double shift) {
  return (sigmas * shift) / (1 + (shift - 1) * sigmas);
}

std::string flow_distribution_name(FlowSigmaDistribution d) {
  switch (d) {
    case FlowSigmaDistribution::LogitNormal: return "logit_normal";
    case FlowSigmaDistribution::Uniform: return "uniform";
    case FlowSigmaDistribution::Beta: return "beta";
    case FlowSigmaDistribution::CubicSpline: return "cubic_spline";
    case FlowSigmaDistribution::FluxFast: return "flux_fast";
    case FlowSigmaDistribution::CustomList: return "custom_list";
  }
  return "?";
}

std::vector<double> parse_cubic_weights(const nlohmann::json& value) {
  const std::string key = "flow_cubic_schedule_weights";
  const auto weights = numbers_of(value, key);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(weights[i])) throw InputError(key + "[" + std::to_string(i) + "] must be finite");
    if (weights[i] < 0) throw InputError(key + "[" + std::to_string(i) + "] must be non-negative");
  }
  if (weights.size() > 1 && std::none_of(weights.begin(), weights.end(), [](double w) { return w > 0; }))
    throw InputError(key + " must contain a positive value when two or more knots are used");
  return weights;
}

std::pair<torch::Tensor, torch::Tensor> cubic_spline_cdf(const std::vector<double>& weights, int64_t resolution) {
  if (weights.size() < 2) throw Error("cubic_spline_cdf needs two or more knots");
  // fp32 throughout, as SimpleTuner builds its grid.
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  std::vector<float> w(weights.begin(), weights.end());
  const auto values = torch::tensor(w, f32);
  const int64_t knots = values.numel();
  const double spacing = 1.0 / static_cast<double>(knots - 1);
  const auto positions = torch::linspace(0.0, static_cast<double>(knots - 1), resolution, f32);
  const auto segment = positions.floor().to(torch::kLong).clamp_max(knots - 2);
  const auto local = positions - segment;

  torch::Tensor pdf;
  if (knots == 2) {
    pdf = torch::lerp(values[0].expand_as(local), values[1].expand_as(local), local);
  } else {
    const auto deltas = (values.slice(0, 1) - values.slice(0, 0, -1)) / spacing;
    auto slopes = torch::zeros_like(values);
    const auto prev = deltas.slice(0, 0, -1), next = deltas.slice(0, 1);
    const auto same = prev * next > 0;
    const auto denominator = torch::where(same, prev + next, torch::ones_like(prev));
    slopes.slice(0, 1, -1).copy_(torch::where(same, 2.0 * prev * next / denominator, torch::zeros_like(prev)));
    slopes[0] = end_slope(deltas[0], deltas[1]);
    slopes[knots - 1] = end_slope(deltas[-1], deltas[-2]);
    const auto l2 = local.square(), l3 = l2 * local;
    const auto h00 = 2.0 * l3 - 3.0 * l2 + 1.0, h10 = l3 - 2.0 * l2 + local;
    const auto h01 = -2.0 * l3 + 3.0 * l2, h11 = l3 - l2;
    pdf = h00 * values.index({segment}) + h10 * spacing * slopes.index({segment}) +
          h01 * values.index({segment + 1}) + h11 * spacing * slopes.index({segment + 1});
  }
  pdf = pdf.clamp_min(0.0);
  const auto grid_x = torch::linspace(0.0, 1.0, resolution, f32);
  const double dx = 1.0 / static_cast<double>(resolution - 1);
  const auto areas = (pdf.slice(0, 0, -1) + pdf.slice(0, 1)) * (0.5 * dx);
  const auto total = areas.sum().item<float>();
  if (!std::isfinite(total) || total <= 0)
    throw InputError("flow_cubic_schedule_weights: the density has zero or non-finite area");
  auto cdf = torch::cat({torch::zeros({1}, f32), torch::cumsum(areas, 0)});
  cdf = cdf / cdf[-1];
  return {grid_x, cdf};
}

FlowSigmaSampler FlowSigmaSampler::from_config(const nlohmann::json& config, const FlowShiftSettings& shift) {
  FlowSigmaSampler s;
  s.shift_settings_ = shift;
  if (flag(config, "mixflow_enabled"))
    throw InputError("mixflow_enabled: MixFlow's slowed interpolation is not built in the studio's trainer");

  s.sigmoid_scale_ = number(config, "flow_sigmoid_scale", 1.0);
  if (!(s.sigmoid_scale_ >= 0)) throw InputError("flow_sigmoid_scale must be non-negative");
  s.beta_alpha_ = number(config, "flow_beta_schedule_alpha", 2.0);
  s.beta_beta_ = number(config, "flow_beta_schedule_beta", 2.0);
  if (!(s.beta_alpha_ > 0) || !(s.beta_beta_ > 0))
    throw InputError("flow_beta_schedule_alpha and flow_beta_schedule_beta must be positive (a Beta distribution)");
  // An explicit null is SimpleTuner's None: no static shift, so flow_schedule_auto_shift can apply.
  const bool shift_null = config.contains("flow_schedule_shift") && config.at("flow_schedule_shift").is_null();
  s.static_shift_ = shift_null ? 0.0 : number(config, "flow_schedule_shift", 3.0);
  if (!(s.static_shift_ >= 0)) throw InputError("flow_schedule_shift must be non-negative");
  s.auto_shift_ = flag(config, "flow_schedule_auto_shift");

  const bool uniform = flag(config, "flow_use_uniform_schedule");
  const bool beta = flag(config, "flow_use_beta_schedule");
  const bool fast = flag(config, "flux_fast_schedule");
  const bool custom = !is_unset(config, "flow_custom_timesteps");
  const bool cubic = !is_unset(config, "flow_cubic_schedule_weights");

  if (cubic) {
    std::vector<std::string> conflicts;
    if (uniform) conflicts.push_back("flow_use_uniform_schedule");
    if (beta) conflicts.push_back("flow_use_beta_schedule");
    if (fast) conflicts.push_back("flux_fast_schedule");
    if (custom) conflicts.push_back("flow_custom_timesteps");
    if (!conflicts.empty()) {
      std::string list;
      for (const auto& c : conflicts) list += (list.empty() ? "" : ", ") + c;
      throw InputError("flow_cubic_schedule_weights cannot be combined with " + list);
    }
  }

  if (custom) {
    // Custom lists come first in SimpleTuner: a list of sigmas (all ≤ 1) or of timesteps in [0, 1000].
    auto values = numbers_of(config.at("flow_custom_timesteps"), "flow_custom_timesteps");
    values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
                 values.end());
    if (values.empty()) throw InputError("flow_custom_timesteps holds no finite value");
    const double top = *std::max_element(values.begin(), values.end());
    for (double v : values) {
      const double sigma = top <= 1.0 ? std::clamp(v, 0.0, 1.0) : std::clamp(v, 0.0, 1000.0) / 1000.0;
      s.custom_sigmas_.push_back(static_cast<float>(sigma));
    }
    std::string mode = "fixed-list";
    if (config.contains("flow_timesteps_mode") && config.at("flow_timesteps_mode").is_string())
      mode = config.at("flow_timesteps_mode").get<std::string>();
    std::replace(mode.begin(), mode.end(), '_', '-');
    if (mode != "fixed-list" && mode != "round-robin")
      throw InputError("flow_timesteps_mode must be fixed-list or round-robin, got \"" + mode + "\"");
    s.round_robin_ = mode == "round-robin";
    s.distribution_ = FlowSigmaDistribution::CustomList;
  } else if (cubic) {
    const auto weights = parse_cubic_weights(config.at("flow_cubic_schedule_weights"));
    s.distribution_ = FlowSigmaDistribution::CubicSpline;
    s.cubic_uniform_ = weights.size() <= 1;
    if (!s.cubic_uniform_) std::tie(s.cubic_x_, s.cubic_cdf_) = cubic_spline_cdf(weights);
  } else if (!fast && !beta && !uniform) {
    s.distribution_ = FlowSigmaDistribution::LogitNormal;
  } else if (uniform) {
    s.distribution_ = FlowSigmaDistribution::Uniform;
  } else if (beta) {
    s.distribution_ = FlowSigmaDistribution::Beta;
  } else {
    s.distribution_ = FlowSigmaDistribution::FluxFast;
  }
  return s;
}

double FlowSigmaSampler::shift_for(int64_t h, int64_t w) const {
  if (distribution_ == FlowSigmaDistribution::CustomList || distribution_ == FlowSigmaDistribution::FluxFast)
    return 1.0;
  if (static_shift_ > 0) return static_shift_;
  if (auto_shift_) {
    const int64_t p = shift_settings_.patch_size;
    return std::exp(flow_shift_mu((h / p) * (w / p), shift_settings_));
  }
  return 1.0;
}

torch::Tensor FlowSigmaSampler::draw(int64_t n, const torch::Device& device, double normal_offset) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  switch (distribution_) {
    case FlowSigmaDistribution::LogitNormal: {
      auto normal = torch::randn({n}, f32);
      if (normal_offset != 0.0) normal = normal + normal_offset;
      return torch::sigmoid(sigmoid_scale_ * normal);
    }
    case FlowSigmaDistribution::Uniform: return torch::rand({n}, f32);
    case FlowSigmaDistribution::Beta: {
      // torch.distributions.Beta samples a two-way Dirichlet and keeps the first share.
      const auto concentration =
          torch::tensor({static_cast<float>(beta_alpha_), static_cast<float>(beta_beta_)}).expand({n, 2}).contiguous();
      return torch::_sample_dirichlet(concentration).select(1, 0).to(device);
    }
    case FlowSigmaDistribution::CubicSpline: {
      const auto u = torch::rand({n}, torch::kFloat32);
      if (cubic_uniform_) return u.to(device);
      const int64_t res = cubic_cdf_.numel();
      const auto upper = torch::searchsorted(cubic_cdf_, u).clamp(1, res - 1);
      const auto lower = upper - 1;
      const auto c_lo = cubic_cdf_.index({lower}), c_hi = cubic_cdf_.index({upper});
      const auto fraction = (u - c_lo) / (c_hi - c_lo).clamp_min(std::numeric_limits<float>::epsilon());
      return torch::lerp(cubic_x_.index({lower}), cubic_x_.index({upper}), fraction).to(device);
    }
    case FlowSigmaDistribution::FluxFast: {
      // Seven in ten draws are pure noise, the rest 0.75, 0.5 or 0.25 (SimpleTuner's fast schedule).
      const auto table = torch::tensor({1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 0.75f, 0.5f, 0.25f});
      return table.index({torch::randint(0, 10, {n}, torch::kLong)}).to(device);
    }
    case FlowSigmaDistribution::CustomList: break;
  }
  throw Error("FlowSigmaSampler::draw: custom lists are indexed, not drawn");
}

torch::Tensor FlowSigmaSampler::sample(int64_t n, int64_t h, int64_t w, const torch::Device& device,
                                       double normal_offset, int64_t global_batch, int64_t local_offset) {
  if (distribution_ == FlowSigmaDistribution::CustomList) {
    const auto table = torch::tensor(custom_sigmas_);
    const int64_t size = table.numel();
    if (size == 1) return table.expand({n}).contiguous().to(device);
    torch::Tensor index;
    if (round_robin_) {
      const int64_t global = global_batch > 0 ? global_batch : n;
      index = (torch::arange(n, torch::kLong) + cursor_ + local_offset).remainder(size);
      cursor_ = (cursor_ + global) % size;
    } else {
      index = torch::randint(0, size, {n}, torch::kLong);
    }
    return table.index({index}).to(device);
  }
  const auto sigmas = draw(n, device, normal_offset);
  const double shift = shift_for(h, w);
  return shift == 1.0 ? sigmas : shift_sigmas(sigmas, shift);
}

FlowSchedulerConfig FlowSchedulerConfig::from_json(const nlohmann::json& c) {
  FlowSchedulerConfig s;
  if (c.contains("num_train_timesteps") && c.at("num_train_timesteps").is_number())
    s.num_train_timesteps = c.at("num_train_timesteps").get<int64_t>();
  if (c.contains("shift") && c.at("shift").is_number()) s.shift = c.at("shift").get<double>();
  if (c.contains("use_dynamic_shifting") && c.at("use_dynamic_shifting").is_boolean())
    s.use_dynamic_shifting = c.at("use_dynamic_shifting").get<bool>();
  if (c.contains("shift_terminal") && c.at("shift_terminal").is_number())
    s.shift_terminal = c.at("shift_terminal").get<double>();
  s.dynamic = FlowShiftSettings::from_scheduler_config(c);
  if (s.num_train_timesteps < 1) throw InputError("scheduler config: num_train_timesteps must be at least 1");
  if (!(s.shift > 0)) throw InputError("scheduler config: shift must be positive");
  for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas",
                          "stochastic_sampling"})
    if (c.contains(key) && c.at(key).is_boolean() && c.at(key).get<bool>())
      throw InputError(std::string("scheduler config: ") + key + " is not supported by the flow Euler sampler");
  if (c.contains("time_shift_type") && c.at("time_shift_type") != "exponential")
    throw InputError("scheduler config: time_shift_type " + c.at("time_shift_type").dump() +
                     " is not supported (exponential only)");
  return s;
}

torch::Tensor flow_inference_sigmas(const FlowSchedulerConfig& c, int64_t n, const std::vector<double>& custom,
                                    double mu) {
  if (n < 1) throw InputError("flow sampler: at least one inference step is needed");
  const double total = static_cast<double>(c.num_train_timesteps);
  torch::Tensor sigmas;
  if (custom.empty()) {
    // The training grid: σ_i = i/T for i = T … 1 in fp32, shifted statically unless shifting is dynamic.
    auto train = torch::linspace(1.0, total, c.num_train_timesteps, torch::kFloat32).flip(0) / static_cast<float>(total);
    if (!c.use_dynamic_shifting) train = static_cast<float>(c.shift) * train / (1 + (static_cast<float>(c.shift) - 1) * train);
    const double sigma_max = train[0].item<float>(), sigma_min = train[-1].item<float>();
    sigmas = torch::linspace(sigma_max * total, sigma_min * total, n, torch::kFloat64) / total;
  } else {
    if (static_cast<int64_t>(custom.size()) != n)
      throw InputError("flow sampler: " + std::to_string(custom.size()) + " custom sigmas for " + std::to_string(n) +
                       " steps");
    sigmas = torch::tensor(custom, torch::kFloat64).to(torch::kFloat32).to(torch::kFloat64);
  }
  if (c.use_dynamic_shifting)
    sigmas = std::exp(mu) / (std::exp(mu) + (1 / sigmas - 1));
  else
    sigmas = c.shift * sigmas / (1 + (c.shift - 1) * sigmas);
  if (c.shift_terminal > 0) {
    const auto one_minus = 1 - sigmas;
    const auto scale = one_minus[-1] / (1 - c.shift_terminal);
    sigmas = 1 - one_minus / scale;
  }
  return torch::cat({sigmas.to(torch::kFloat32).to(torch::kFloat64), torch::zeros({1}, torch::kFloat64)});
}

void FlowSigmaSampler::resume_round_robin(int64_t completed_steps, int64_t global_batch) {
  if (custom_sigmas_.empty()) return;
  const auto size = static_cast<int64_t>(custom_sigmas_.size());
  cursor_ = ((completed_steps % size) * (global_batch % size)) % size;
}

}  // namespace repa::diffusion
