#include "core/text/clip_text_model.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_config.h"
#include "core/models/diffusers_weights.h"
#include "core/text/text_encoder_weights.h"

namespace repa::text {
namespace {

namespace dc = repa::models::diffusers;

torch::Tensor activate(const torch::Tensor& x, const std::string& activation) {
  if (activation == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  if (activation == "gelu") return torch::gelu(x);
  return torch::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

}  // namespace

ClipTextConfig ClipTextConfig::from_json(const nlohmann::json& json) {
  const nlohmann::json& c =
      json.contains("text_config") && json.at("text_config").is_object() ? json.at("text_config") : json;
  ClipTextConfig config;
  config.vocab_size = dc::config_int(c, "vocab_size", config.vocab_size);
  config.hidden_size = dc::config_int(c, "hidden_size", config.hidden_size);
  config.intermediate_size = dc::config_int(c, "intermediate_size", config.intermediate_size);
  config.num_hidden_layers = dc::config_int(c, "num_hidden_layers", config.num_hidden_layers);
  config.num_attention_heads = dc::config_int(c, "num_attention_heads", config.num_attention_heads);
  config.max_position_embeddings = dc::config_int(c, "max_position_embeddings", config.max_position_embeddings);
  config.layer_norm_eps = dc::config_double(c, "layer_norm_eps", config.layer_norm_eps);
  config.hidden_act = dc::config_string(c, "hidden_act", config.hidden_act);
  dc::config_require_one_of(c, "hidden_act", {"quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"});
  config.eos_token_id = dc::config_int(c, "eos_token_id", config.eos_token_id);
  config.projection_dim = dc::config_int(c, "projection_dim", dc::config_int(json, "projection_dim", 512));
  for (const auto& name : dc::config_strings(json, "architectures", {}))
    if (name == "CLIPTextModelWithProjection") config.with_projection = true;
  if (config.hidden_size % config.num_attention_heads != 0)
    throw InputError("CLIP text config: hidden_size " + std::to_string(config.hidden_size) +
                     " is not divisible by num_attention_heads " + std::to_string(config.num_attention_heads));
  return config;
}

ClipAttentionImpl::ClipAttentionImpl(int64_t hidden, int64_t heads_) : heads(heads_), head_dim(hidden / heads_) {
  q_proj = register_module("q_proj", repa::nn::Linear(hidden, hidden));
  k_proj = register_module("k_proj", repa::nn::Linear(hidden, hidden));
  v_proj = register_module("v_proj", repa::nn::Linear(hidden, hidden));
  out_proj = register_module("out_proj", repa::nn::Linear(hidden, hidden));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const auto b = x.size(0), l = x.size(1);
  const auto split = [&](const torch::Tensor& t) { return t.view({b, l, heads, head_dim}).transpose(1, 2); };
  // As CLIPAttention: the query is scaled before the product, the masks are added, softmax in fp32.
  const auto q = split(q_proj(x) * std::pow(static_cast<double>(head_dim), -0.5));
  const auto k = split(k_proj(x));
  const auto v = split(v_proj(x));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) + mask;
  const auto weights = torch::softmax(scores, -1);
  const auto out = torch::matmul(weights, v).transpose(1, 2).reshape({b, l, heads * head_dim});
  return out_proj(out);
}

ClipMlpImpl::ClipMlpImpl(int64_t hidden, int64_t intermediate, std::string activation_)
    : activation(std::move(activation_)) {
  fc1 = register_module("fc1", repa::nn::Linear(hidden, intermediate));
  fc2 = register_module("fc2", repa::nn::Linear(intermediate, hidden));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  return fc2(activate(fc1(x), activation));
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const ClipTextConfig& c) {
  const auto norm = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
  };
  self_attn = register_module("self_attn", ClipAttention(c.hidden_size, c.num_attention_heads));
  layer_norm1 = register_module("layer_norm1", norm());
  mlp = register_module("mlp", ClipMlp(c.hidden_size, c.intermediate_size, c.hidden_act));
  layer_norm2 = register_module("layer_norm2", norm());
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  auto h = x + self_attn(layer_norm1(x), mask);
  return h + mlp(layer_norm2(h));
}

ClipTextEmbeddingsImpl::ClipTextEmbeddingsImpl(const ClipTextConfig& c) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
}

torch::Tensor ClipTextEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const auto positions = torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong));
  return token_embedding(input_ids) + position_embedding(positions).unsqueeze(0);
}

ClipEncoderImpl::ClipEncoderImpl(const ClipTextConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(ClipEncoderLayer(c));
}

ClipTextTransformerImpl::ClipTextTransformerImpl(const ClipTextConfig& c) {
  embeddings = register_module("embeddings", ClipTextEmbeddings(c));
  encoder = register_module("encoder", ClipEncoder(c));
  final_layer_norm = register_module(
      "final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

ClipTextModelImpl::ClipTextModelImpl(ClipTextConfig config) : config_(std::move(config)) {
  text_model = register_module("text_model", ClipTextTransformer(config_));
  if (config_.with_projection)
    text_projection = register_module(
        "text_projection",
        repa::nn::Linear(torch::nn::LinearOptions(config_.hidden_size, config_.projection_dim).bias(false)));
}

torch::Tensor ClipTextModelImpl::eos_positions(const torch::Tensor& input_ids) const {
  const auto ids = input_ids.to(torch::kCPU, torch::kLong).contiguous();
  const auto rows = ids.size(0), length = ids.size(1);
  auto positions = torch::zeros({rows}, torch::kLong);
  const auto view = ids.accessor<int64_t, 2>();
  for (int64_t b = 0; b < rows; ++b) {
    int64_t at = 0;
    for (int64_t j = 0; j < length; ++j) {
      if (config_.eos_token_id == 2) {
        if (view[b][j] > view[b][at]) at = j;  // first maximum: transformers' legacy argmax rule
      } else if (view[b][j] == config_.eos_token_id) {
        at = j;
        break;
      }
    }
    positions[b] = at;
  }
  return positions.to(input_ids.device());
}

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  if (input_ids.dim() != 2)
    throw InputError("CLIP text model: input_ids must be (batch, length), got " + std::to_string(input_ids.dim()) +
                     " dimensions");
  const auto length = input_ids.size(1);
  if (length > config_.max_position_embeddings)
    throw InputError("CLIP text model: " + std::to_string(length) + " tokens exceed max_position_embeddings " +
                     std::to_string(config_.max_position_embeddings));
  ClipTextOutput out;
  auto h = text_model->embeddings(input_ids);
  const double lowest = lowest_value(h.scalar_type());
  // The causal mask, plus the padding mask when given, added as transformers adds them (both terms).
  auto mask = torch::full({length, length}, lowest, h.options()).triu(1).view({1, 1, length, length});
  if (attention_mask.defined()) {
    const auto keep = attention_mask.to(h.device()).view({attention_mask.size(0), 1, 1, length});
    mask = mask + torch::zeros({1}, h.options()).masked_fill((keep == 0), lowest);
  }
  out.hidden_states.push_back(h);
  for (const auto& layer : *text_model->encoder->layers) {
    h = layer->as<ClipEncoderLayer>()->forward(h, mask);
    out.hidden_states.push_back(h);
  }
  out.last_hidden_state = text_model->final_layer_norm(h);
  const auto positions = eos_positions(input_ids);
  const auto rows = torch::arange(input_ids.size(0), positions.options());
  out.pooler_output = out.last_hidden_state.index({rows, positions});
  if (text_projection) out.text_embeds = text_projection(out.pooler_output);
  return out;
}

ClipTextModel load_clip_text_model(const ClipTextConfig& config, const std::vector<std::string>& names,
                                   const std::function<torch::Tensor(const std::string&)>& tensor,
                                   const std::string& source) {
  ClipTextModel model(config);
  std::vector<std::string> used;
  for (const auto& name : names)
    if (name != "text_model.embeddings.position_ids") used.push_back(name);  // older transformers saved it
  repa::models::diffusers::load_named_tensors(*model, used, tensor, source);
  model->eval();
  return model;
}

ClipTextModel load_clip_text_model(const std::string& folder) {
  namespace fs = std::filesystem;
  const auto weights = find_text_encoder_weights(folder);  // names the folder first when it is not one
  const auto config = ClipTextConfig::from_json(dc::read_config_file((fs::path(folder) / "config.json").string()));
  const auto checkpoint = repa::io::SafetensorsCheckpoint::open(weights);
  return load_clip_text_model(
      config, checkpoint.names(), [&](const std::string& name) { return checkpoint.tensor(name, true); },
      checkpoint.path());
}

}  // namespace repa::text
