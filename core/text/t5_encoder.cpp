#include "core/text/t5_encoder.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_config.h"
#include "core/models/diffusers_weights.h"
#include "core/text/text_encoder_weights.h"

namespace repa::text {
namespace {

namespace dc = repa::models::diffusers;

torch::Tensor activate(const torch::Tensor& x, const std::string& activation) {
  if (activation == "relu") return torch::relu(x);
  if (activation == "gelu") return torch::gelu(x);
  return torch::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

// transformers clamps fp16 activations that overflowed, so that T5 runs in half precision at all.
torch::Tensor clamp_half(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kHalf) return x;
  const double limit = torch::isinf(x).any().item<bool>() ? 65504.0 - 1000.0 : 65504.0;
  return x.clamp(-limit, limit);
}

}  // namespace

T5EncoderConfig T5EncoderConfig::from_json(const nlohmann::json& c) {
  T5EncoderConfig config;
  config.vocab_size = dc::config_int(c, "vocab_size", config.vocab_size);
  config.d_model = dc::config_int(c, "d_model", config.d_model);
  config.d_kv = dc::config_int(c, "d_kv", config.d_kv);
  config.d_ff = dc::config_int(c, "d_ff", config.d_ff);
  config.num_layers = dc::config_int(c, "num_layers", config.num_layers);
  config.num_heads = dc::config_int(c, "num_heads", config.num_heads);
  config.relative_attention_num_buckets =
      dc::config_int(c, "relative_attention_num_buckets", config.relative_attention_num_buckets);
  config.relative_attention_max_distance =
      dc::config_int(c, "relative_attention_max_distance", config.relative_attention_max_distance);
  config.layer_norm_epsilon = dc::config_double(c, "layer_norm_epsilon", config.layer_norm_epsilon);
  // As T5Config: feed_forward_proj "gated-ACT" or "ACT"; "gated-gelu" means the tanh GELU.
  const std::string proj = dc::config_string(c, "feed_forward_proj", "relu");
  config.is_gated_act = dc::config_bool(c, "is_gated_act", proj.rfind("gated-", 0) == 0);
  std::string act = proj.rfind("gated-", 0) == 0 ? proj.substr(6) : proj;
  if (proj == "gated-gelu") act = "gelu_new";
  config.dense_act_fn = dc::config_string(c, "dense_act_fn", act);
  if (config.dense_act_fn != "gelu_new" && config.dense_act_fn != "gelu_pytorch_tanh" &&
      config.dense_act_fn != "gelu" && config.dense_act_fn != "relu")
    throw InputError("T5 config: activation '" + config.dense_act_fn + "' (feed_forward_proj '" + proj +
                     "', dense_act_fn) is not supported (gelu_new, gelu_pytorch_tanh, gelu, relu)");
  return config;
}

T5LayerNormImpl::T5LayerNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
  const auto variance = x.to(torch::kFloat).pow(2).mean(-1, true);
  auto h = x * torch::rsqrt(variance + eps);
  if (weight.scalar_type() == torch::kHalf || weight.scalar_type() == torch::kBFloat16) h = h.to(weight.scalar_type());
  return weight * h;
}

T5AttentionImpl::T5AttentionImpl(const T5EncoderConfig& c, bool has_relative_attention_bias)
    : heads(c.num_heads),
      d_kv(c.d_kv),
      num_buckets(c.relative_attention_num_buckets),
      max_distance(c.relative_attention_max_distance) {
  const auto inner = c.num_heads * c.d_kv;
  const auto linear = [](int64_t in, int64_t out) {
    return repa::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  q = register_module("q", linear(c.d_model, inner));
  k = register_module("k", linear(c.d_model, inner));
  v = register_module("v", linear(c.d_model, inner));
  o = register_module("o", linear(inner, c.d_model));
  if (has_relative_attention_bias)
    relative_attention_bias = register_module("relative_attention_bias", torch::nn::Embedding(num_buckets, heads));
}

torch::Tensor T5AttentionImpl::compute_bias(int64_t length, const torch::Device& device) {
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto context = torch::arange(length, options).unsqueeze(1);
  const auto memory = torch::arange(length, options).unsqueeze(0);
  auto relative = memory - context;
  // Bidirectional: half the buckets for each sign; exact below max_exact, logarithmic up to max_distance.
  const int64_t buckets = num_buckets / 2;
  auto bucket = (relative > 0).to(torch::kLong) * buckets;
  relative = relative.abs();
  const int64_t max_exact = buckets / 2;
  const auto is_small = relative < max_exact;
  auto large = max_exact + (torch::log(relative.to(torch::kFloat) / max_exact) /
                            std::log(static_cast<double>(max_distance) / max_exact) * (buckets - max_exact))
                               .to(torch::kLong);
  large = torch::min(large, torch::full_like(large, buckets - 1));
  bucket = bucket + torch::where(is_small, relative, large);
  return relative_attention_bias(bucket).permute({2, 0, 1}).unsqueeze(0);  // (1, heads, L, L)
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  const auto b = x.size(0), l = x.size(1);
  const auto split = [&](const torch::Tensor& t) { return t.view({b, l, heads, d_kv}).transpose(1, 2); };
  // No 1/sqrt(d_kv): T5 folds the scale into its initialisation.
  auto scores = torch::matmul(split(q(x)), split(k(x)).transpose(-1, -2)) + position_bias;
  const auto weights = torch::softmax(scores.to(torch::kFloat), -1).to(scores.scalar_type());
  const auto out = torch::matmul(weights, split(v(x))).transpose(1, 2).reshape({b, l, heads * d_kv});
  return o(out);
}

T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const T5EncoderConfig& c, bool has_relative_attention_bias) {
  SelfAttention = register_module("SelfAttention", T5Attention(c, has_relative_attention_bias));
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor T5LayerSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  return x + SelfAttention(layer_norm(x), position_bias);
}

T5DenseActDenseImpl::T5DenseActDenseImpl(const T5EncoderConfig& c) : activation(c.dense_act_fn) {
  const auto linear = [](int64_t in, int64_t out) {
    return repa::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  if (c.is_gated_act) {
    wi_0 = register_module("wi_0", linear(c.d_model, c.d_ff));
    wi_1 = register_module("wi_1", linear(c.d_model, c.d_ff));
  } else {
    wi = register_module("wi", linear(c.d_model, c.d_ff));
  }
  wo = register_module("wo", linear(c.d_ff, c.d_model));
}

torch::Tensor T5DenseActDenseImpl::forward(const torch::Tensor& x) {
  const auto hidden = wi ? activate(wi(x), activation) : activate(wi_0(x), activation) * wi_1(x);
  return wo(hidden);
}

T5LayerFFImpl::T5LayerFFImpl(const T5EncoderConfig& c) {
  DenseReluDense = register_module("DenseReluDense", T5DenseActDense(c));
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor T5LayerFFImpl::forward(const torch::Tensor& x) {
  return x + DenseReluDense(layer_norm(x));
}

T5BlockImpl::T5BlockImpl(const T5EncoderConfig& c, bool has_relative_attention_bias) {
  self_attention = T5LayerSelfAttention(c, has_relative_attention_bias);
  feed_forward = T5LayerFF(c);
  layer = register_module("layer", torch::nn::ModuleList(self_attention, feed_forward));
}

torch::Tensor T5BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  return clamp_half(feed_forward(clamp_half(self_attention(x, position_bias))));
}

T5StackImpl::T5StackImpl(const T5EncoderConfig& c) {
  block = register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) block->push_back(T5Block(c, i == 0));
  final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layer_norm_epsilon));
}

T5EncoderModelImpl::T5EncoderModelImpl(T5EncoderConfig config) : config_(std::move(config)) {
  shared = register_module("shared", torch::nn::Embedding(config_.vocab_size, config_.d_model));
  encoder = register_module("encoder", T5Stack(config_));
}

T5EncoderOutput T5EncoderModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  if (input_ids.dim() != 2)
    throw InputError("T5 encoder: input_ids must be (batch, length), got " + std::to_string(input_ids.dim()) +
                     " dimensions");
  const auto length = input_ids.size(1);
  T5EncoderOutput out;
  auto h = shared(input_ids);
  auto first = encoder->block[0]->as<T5Block>();
  // The bias table of block 0 serves every block; the padding mask is folded into it once.
  auto position_bias = first->self_attention->SelfAttention->compute_bias(length, h.device()).to(h.scalar_type());
  if (attention_mask.defined()) {
    const auto keep = attention_mask.to(h.device()).view({attention_mask.size(0), 1, 1, length});
    position_bias = position_bias + (1.0 - keep.to(h.scalar_type())) * lowest_value(h.scalar_type());
  }
  for (const auto& module : *encoder->block) {
    out.hidden_states.push_back(h);
    h = module->as<T5Block>()->forward(h, position_bias);
  }
  out.last_hidden_state = encoder->final_layer_norm(h);
  out.hidden_states.push_back(out.last_hidden_state);
  return out;
}

T5EncoderModel load_t5_encoder(const T5EncoderConfig& config, const std::vector<std::string>& names,
                               const std::function<torch::Tensor(const std::string&)>& tensor,
                               const std::string& source) {
  T5EncoderModel model(config);
  const bool has_shared = std::find(names.begin(), names.end(), "shared.weight") != names.end();
  const bool has_embed = std::find(names.begin(), names.end(), "encoder.embed_tokens.weight") != names.end();
  if (has_shared && has_embed && !torch::equal(tensor("shared.weight"), tensor("encoder.embed_tokens.weight")))
    throw InputError("T5 weights '" + source +
                     "': shared.weight and encoder.embed_tokens.weight differ (they are one tied table)");
  std::vector<std::string> used;
  for (const auto& name : names)
    if (name != "encoder.embed_tokens.weight" || !has_shared) used.push_back(name);
  // encoder.embed_tokens.weight alone stands for shared.weight.
  std::vector<std::string> renamed;
  for (const auto& name : used) renamed.push_back(name == "encoder.embed_tokens.weight" ? "shared.weight" : name);
  repa::models::diffusers::load_named_tensors(
      *model, renamed,
      [&](const std::string& name) {
        return (name == "shared.weight" && !has_shared) ? tensor("encoder.embed_tokens.weight") : tensor(name);
      },
      source);
  model->eval();
  return model;
}

T5EncoderModel load_t5_encoder(const std::string& folder) {
  namespace fs = std::filesystem;
  const auto weights = find_text_encoder_weights(folder);  // names the folder first when it is not one
  const auto config = T5EncoderConfig::from_json(dc::read_config_file((fs::path(folder) / "config.json").string()));
  const auto checkpoint = repa::io::SafetensorsCheckpoint::open(weights);
  return load_t5_encoder(
      config, checkpoint.names(), [&](const std::string& name) { return checkpoint.tensor(name, true); },
      checkpoint.path());
}

}  // namespace repa::text
