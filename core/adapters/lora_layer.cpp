#include "core/adapters/lora_layer.h"

#include <cmath>

#include "core/base/error.h"

namespace repa::adapters {
namespace {

double number_or(const nlohmann::json& config, const std::string& key, double fallback) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  if (!config.at(key).is_number()) throw InputError("config key '" + key + "': expected a number");
  return config.at(key).get<double>();
}

std::string string_or(const nlohmann::json& config, const std::string& key, const std::string& fallback) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  if (!config.at(key).is_string()) throw InputError("config key '" + key + "': expected a string");
  return config.at(key).get<std::string>();
}

}  // namespace

LoraSettings LoraSettings::from_json(const nlohmann::json& config) {
  LoraSettings s;
  const double rank = number_or(config, "lora_rank", 16);
  if (rank < 1 || rank != std::floor(rank)) {
    throw InputError("config key 'lora_rank': expected a positive integer, got " + config.at("lora_rank").dump());
  }
  s.rank = static_cast<int64_t>(rank);
  if (config.contains("lora_alpha") && !config.at("lora_alpha").is_null()) {
    s.alpha = number_or(config, "lora_alpha", 0);
    if (!(*s.alpha > 0)) throw InputError("config key 'lora_alpha': expected a positive number");
  }
  s.dropout = number_or(config, "lora_dropout", 0.1);
  if (s.dropout < 0 || s.dropout >= 1) throw InputError("config key 'lora_dropout': expected a value in [0, 1)");
  const auto init = string_or(config, "lora_init_type", "default");
  if (init == "default") {
    s.init = LoraInit::KaimingUniform;
  } else if (init == "gaussian") {
    s.init = LoraInit::Gaussian;
  } else if (init == "loftq" || init == "olora" || init == "pissa") {
    throw InputError("config key 'lora_init_type': '" + init +
                     "' is not supported by the studio's trainer (it rewrites or quantises the base weights); use "
                     "default or gaussian");
  } else {
    throw InputError("config key 'lora_init_type': unknown value '" + init +
                     "' (expected default, gaussian, loftq, olora or pissa)");
  }
  if (config.contains("use_dora") && !config.at("use_dora").is_null()) {
    if (!config.at("use_dora").is_boolean()) throw InputError("config key 'use_dora': expected true or false");
    s.use_dora = config.at("use_dora").get<bool>();
  }
  const auto type = string_or(config, "lora_type", "standard");
  if (type == "lycoris") {
    throw InputError(
        "config key 'lora_type': 'lycoris' is not supported by the studio's trainer (it trains "
        "standard LoRA); the value is kept for a SimpleTuner export");
  }
  if (type != "standard") throw InputError("config key 'lora_type': unknown value '" + type + "'");
  return s;
}

LoraLayerImpl::LoraLayerImpl(const torch::nn::Module* owner, torch::Tensor base_weight, torch::Tensor base_bias,
                             const LoraSettings& settings, int64_t stride, int64_t padding)
    : owner_(owner),
      base_weight_(std::move(base_weight)),
      base_bias_(std::move(base_bias)),
      scaling_(settings.scaling()),
      dropout_(settings.dropout),
      stride_(stride),
      padding_(padding) {
  if (base_weight_.dim() != 2 && base_weight_.dim() != 4) {
    throw InputError("LoRA: a Linear (2-D) or Conv2d (4-D) weight is needed, got " +
                     std::to_string(base_weight_.dim()) + " dimensions");
  }
  const int64_t r = settings.rank;
  const int64_t out = base_weight_.size(0), in = base_weight_.size(1);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(base_weight_.device());
  if (is_conv()) {
    const int64_t kh = base_weight_.size(2), kw = base_weight_.size(3);
    lora_A = register_parameter("lora_A", torch::empty({r, in, kh, kw}, opts));
    lora_B = register_parameter("lora_B", torch::zeros({out, r, 1, 1}, opts));
  } else {
    lora_A = register_parameter("lora_A", torch::empty({r, in}, opts));
    lora_B = register_parameter("lora_B", torch::zeros({out, r}, opts));
  }
  torch::NoGradGuard no_grad;
  const double fan_in = static_cast<double>(lora_A[0].numel());
  if (settings.init == LoraInit::KaimingUniform) {
    const double bound = 1.0 / std::sqrt(fan_in);
    lora_A.uniform_(-bound, bound);
  } else {
    lora_A.normal_(0.0, 1.0 / static_cast<double>(r));
  }
  if (settings.use_dora) {
    // With B = 0 the norm is ||W||, so a fresh DoRA leaves the output unchanged.
    magnitude = register_parameter("lora_magnitude_vector", weight_norm(torch::zeros_like(base_weight_, opts)));
  }
}

torch::Tensor LoraLayerImpl::lora_branch(const torch::Tensor& h) const {
  if (is_conv()) {
    auto a = torch::conv2d(h, lora_A, {}, {stride_, stride_}, {padding_, padding_});
    return torch::conv2d(a, lora_B);
  }
  return torch::linear(torch::linear(h, lora_A), lora_B);
}

torch::Tensor LoraLayerImpl::delta_weight() const {
  if (is_conv()) {
    return (lora_B.flatten(1).matmul(lora_A.flatten(1)) * scaling_).reshape(base_weight_.sizes());
  }
  return lora_B.matmul(lora_A) * scaling_;
}

torch::Tensor LoraLayerImpl::weight_norm(const torch::Tensor& delta) const {
  auto w = base_weight_.to(torch::kFloat32) + delta;
  if (is_conv()) return w.norm(2, {1, 2, 3}, /*keepdim=*/true).transpose(0, 1);
  return w.norm(2, {1});
}

torch::Tensor LoraLayerImpl::merged_weight() const {
  const auto delta = delta_weight();
  auto merged = base_weight_.to(torch::kFloat32) + delta;
  if (magnitude.defined()) {
    auto factor = magnitude / weight_norm(delta);
    merged = is_conv() ? merged * factor.transpose(0, 1) : merged * factor.unsqueeze(1);
  }
  return merged.to(base_weight_.scalar_type());
}

torch::Tensor LoraLayerImpl::base_without_bias(const torch::Tensor& h) const {
  const auto w = base_weight_.to(h.scalar_type());
  if (is_conv()) return torch::conv2d(h, w, {}, {stride_, stride_}, {padding_, padding_});
  return torch::linear(h, w);
}

torch::Tensor LoraLayerImpl::apply(const torch::Tensor& x, const torch::Tensor& base) {
  const bool dropping = dropout_ > 0 && owner_ != nullptr && owner_->is_training();
  auto h = x.to(lora_A.scalar_type());
  if (dropping) h = torch::dropout(h, dropout_, /*train=*/true);
  const auto lora = lora_branch(h) * scaling_;
  if (!magnitude.defined()) return (base + lora).to(base.scalar_type());

  torch::Tensor norm;
  {
    // peft detaches the norm: the gradient reaches m and the LoRA branch, not the normalisation.
    torch::NoGradGuard no_grad;
    norm = weight_norm(delta_weight());
  }
  auto scale = magnitude / norm;
  if (!is_conv()) scale = scale.view({-1});
  // Without dropout the base output (minus its bias) is W x; with dropout peft recomputes W on the dropped input.
  torch::Tensor wx;
  if (dropping) {
    wx = base_without_bias(h);
  } else {
    wx = base.to(h.scalar_type());
    if (base_bias_.defined())
      wx = wx - (is_conv() ? base_bias_.to(wx.scalar_type()).view({1, -1, 1, 1}) : base_bias_.to(wx.scalar_type()));
  }
  auto out = base + (scale - 1) * wx + scale * lora;
  return out.to(base.scalar_type());
}

}  // namespace repa::adapters
