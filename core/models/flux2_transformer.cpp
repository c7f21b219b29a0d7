#include "core/models/flux2_transformer.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"
#include "core/models/flux_official_names.h"
#include "core/models/flux_transformer.h"
#include "core/models/sd3_official_names.h"
#include "core/nn/state_loading.h"

namespace repa::models {

namespace {

const char* const kModel = "Flux2Transformer2DModel";

void require_positive(double value, const std::string& key) {
  if (!(value > 0))
    throw InputError(std::string(kModel) + " config: " + key + " must be positive, got " + std::to_string(value));
}

// A parameterless parent module, so that children get diffusers' dotted names (e.g. time_guidance_embed.*).
std::shared_ptr<torch::nn::Module> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

// Flux2Modulation.split: shift, scale, gate per parameter set, each (B, 1, D) to broadcast over tokens.
std::vector<torch::Tensor> split_modulation(const torch::Tensor& mod, int64_t sets) {
  return mod.unsqueeze(1).chunk(3 * sets, -1);
}

torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale, double eps) {
  return (1 + scale) * torch::layer_norm(x, {x.size(-1)}, {}, {}, eps) + shift;
}

}  // namespace

Flux2TransformerConfig Flux2TransformerConfig::from_json(const nlohmann::json& json) {
  using namespace diffusers;
  if (!json.is_object()) throw InputError(std::string(kModel) + " config: expected a JSON object");
  Flux2TransformerConfig c;
  c.patch_size = config_int(json, "patch_size", c.patch_size);
  c.in_channels = config_int(json, "in_channels", c.in_channels);
  c.out_channels = config_int(json, "out_channels", 0);  // `out_channels or in_channels`
  if (c.out_channels == 0) c.out_channels = c.in_channels;
  c.num_layers = config_int(json, "num_layers", c.num_layers);
  c.num_single_layers = config_int(json, "num_single_layers", c.num_single_layers);
  c.attention_head_dim = config_int(json, "attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = config_int(json, "num_attention_heads", c.num_attention_heads);
  c.joint_attention_dim = config_int(json, "joint_attention_dim", c.joint_attention_dim);
  c.timestep_guidance_channels = config_int(json, "timestep_guidance_channels", c.timestep_guidance_channels);
  c.mlp_ratio = config_double(json, "mlp_ratio", c.mlp_ratio);
  c.axes_dims_rope = config_ints(json, "axes_dims_rope", c.axes_dims_rope);
  c.rope_theta = config_double(json, "rope_theta", c.rope_theta);
  c.eps = config_double(json, "eps", c.eps);
  c.guidance_embeds = config_bool(json, "guidance_embeds", c.guidance_embeds);
  c.validate();
  return c;
}

void Flux2TransformerConfig::validate() const {
  require_positive(static_cast<double>(patch_size), "patch_size");
  require_positive(static_cast<double>(in_channels), "in_channels");
  require_positive(static_cast<double>(out_channels), "out_channels");
  if (num_layers < 0) throw InputError(std::string(kModel) + " config: num_layers must not be negative");
  if (num_single_layers < 0) throw InputError(std::string(kModel) + " config: num_single_layers must not be negative");
  require_positive(static_cast<double>(joint_attention_dim), "joint_attention_dim");
  require_positive(static_cast<double>(timestep_guidance_channels), "timestep_guidance_channels");
  require_positive(mlp_ratio, "mlp_ratio");
  require_positive(rope_theta, "rope_theta");
  require_positive(eps, "eps");
  if (mlp_hidden_dim() <= 0) throw InputError(std::string(kModel) + " config: mlp_ratio gives an empty MLP");
  validate_flux_layout(kModel, num_attention_heads, attention_head_dim, axes_dims_rope);
}

Flux2FeedForwardImpl::Flux2FeedForwardImpl(int64_t dim, int64_t inner) {
  linear_in = register_module("linear_in", diffusers::Linear(dim, 2 * inner, false));
  linear_out = register_module("linear_out", diffusers::Linear(inner, dim, false));
}

torch::Tensor Flux2FeedForwardImpl::forward(const torch::Tensor& x) {
  const auto h = linear_in(x).chunk(2, -1);
  return linear_out(torch::silu(h[0]) * h[1]);
}

Flux2DoubleBlockImpl::Flux2DoubleBlockImpl(const Flux2TransformerConfig& c) : eps(c.eps) {
  mmdit::JointAttentionOptions o;
  o.dim = c.inner_dim();
  o.heads = c.num_attention_heads;
  o.dim_head = c.attention_head_dim;
  o.qk_norm = dit::QKNorm::RMSNorm;
  o.eps = c.eps;
  o.bias = false;
  o.text_first = true;
  attn = register_module("attn", mmdit::JointAttention(o));
  ff = register_module("ff", Flux2FeedForward(c.inner_dim(), c.mlp_hidden_dim()));
  ff_context = register_module("ff_context", Flux2FeedForward(c.inner_dim(), c.mlp_hidden_dim()));
}

std::pair<torch::Tensor, torch::Tensor> Flux2DoubleBlockImpl::forward(const torch::Tensor& x,
                                                                      const torch::Tensor& context,
                                                                      const torch::Tensor& image_mod,
                                                                      const torch::Tensor& text_mod,
                                                                      const mmdit::Rotary& rotary) {
  const auto m = split_modulation(image_mod, 2), cm = split_modulation(text_mod, 2);
  auto [attn_x, attn_context] = attn(modulate(x, m[0], m[1], eps), modulate(context, cm[0], cm[1], eps), rotary);
  auto h = x + m[2] * attn_x;
  h = h + m[5] * ff(modulate(h, m[3], m[4], eps));
  auto c = context + cm[2] * attn_context;
  c = c + cm[5] * ff_context(modulate(c, cm[3], cm[4], eps));
  if (c.scalar_type() == torch::kHalf) c = c.clamp(-65504, 65504);  // as diffusers, against fp16 overflow
  return {c, h};
}

Flux2ParallelSelfAttentionImpl::Flux2ParallelSelfAttentionImpl(const Flux2TransformerConfig& c)
    : heads(c.num_attention_heads), head_dim(c.attention_head_dim), mlp_hidden(c.mlp_hidden_dim()) {
  const int64_t dim = c.inner_dim();
  to_qkv_mlp_proj = register_module("to_qkv_mlp_proj", diffusers::Linear(dim, 3 * dim + 2 * mlp_hidden, false));
  norm_q = register_module("norm_q", dit::RMSNorm(head_dim, c.eps));
  norm_k = register_module("norm_k", dit::RMSNorm(head_dim, c.eps));
  to_out = register_module("to_out", diffusers::Linear(dim + mlp_hidden, dim, false));
}

torch::Tensor Flux2ParallelSelfAttentionImpl::forward(const torch::Tensor& x, const mmdit::Rotary& rotary) {
  const int64_t inner = heads * head_dim;
  const auto projected = to_qkv_mlp_proj(x);
  const auto qkv = projected.narrow(-1, 0, 3 * inner).chunk(3, -1);
  const auto mlp = projected.narrow(-1, 3 * inner, 2 * mlp_hidden).chunk(2, -1);
  const auto q = norm_q(qkv[0].unflatten(-1, {heads, head_dim}));
  const auto k = norm_k(qkv[1].unflatten(-1, {heads, head_dim}));
  const auto v = qkv[2].unflatten(-1, {heads, head_dim});
  const auto attended = mmdit::rotary_attention(q, k, v, rotary);
  return to_out(torch::cat({attended, torch::silu(mlp[0]) * mlp[1]}, -1));
}

Flux2SingleBlockImpl::Flux2SingleBlockImpl(const Flux2TransformerConfig& c) : eps(c.eps) {
  attn = register_module("attn", Flux2ParallelSelfAttention(c));
}

torch::Tensor Flux2SingleBlockImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mod,
                                            const mmdit::Rotary& rotary) {
  const auto m = split_modulation(mod, 1);
  auto out = hidden + m[2] * attn(modulate(hidden, m[0], m[1], eps), rotary);
  if (out.scalar_type() == torch::kHalf) out = out.clamp(-65504, 65504);
  return out;
}

Flux2TransformerImpl::Flux2TransformerImpl(const Flux2TransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim(), channels = config.timestep_guidance_channels;
  auto time_guidance = holder(*this, "time_guidance_embed");
  timestep_embedder =
      time_guidance->register_module("timestep_embedder", dit::TimestepEmbedding(channels, dim, 0, false));
  if (config.guidance_embeds)
    guidance_embedder =
        time_guidance->register_module("guidance_embedder", dit::TimestepEmbedding(channels, dim, 0, false));
  double_stream_modulation_img =
      holder(*this, "double_stream_modulation_img")->register_module("linear", diffusers::Linear(dim, 6 * dim, false));
  double_stream_modulation_txt =
      holder(*this, "double_stream_modulation_txt")->register_module("linear", diffusers::Linear(dim, 6 * dim, false));
  single_stream_modulation =
      holder(*this, "single_stream_modulation")->register_module("linear", diffusers::Linear(dim, 3 * dim, false));
  x_embedder = register_module("x_embedder", diffusers::Linear(config.in_channels, dim, false));
  context_embedder = register_module("context_embedder", diffusers::Linear(config.joint_attention_dim, dim, false));
  auto doubles = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    transformer_blocks.push_back(Flux2DoubleBlock(config));
    doubles->push_back(transformer_blocks.back());
  }
  auto singles = register_module("single_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    single_transformer_blocks.push_back(Flux2SingleBlock(config));
    singles->push_back(single_transformer_blocks.back());
  }
  norm_out = register_module("norm_out", mmdit::AdaLayerNormContinuous(dim, dim, false, config.eps));
  proj_out = register_module(
      "proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels, false));
}

DiTOutput Flux2TransformerImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                                        const torch::Tensor& timestep, const torch::Tensor& img_ids,
                                        const torch::Tensor& txt_ids, const torch::Tensor& guidance, int64_t tap) {
  check_tap_index(tap, num_double_blocks(), num_single_blocks(), kModel);
  if (!hidden_states.defined() || hidden_states.dim() != 3 || hidden_states.size(2) != config.in_channels)
    throw InputError(std::string(kModel) + ": hidden_states must be packed latent tokens (B, N, " +
                     std::to_string(config.in_channels) + ")");
  if (!encoder_hidden_states.defined() || encoder_hidden_states.dim() != 3 ||
      encoder_hidden_states.size(2) != config.joint_attention_dim)
    throw InputError(std::string(kModel) + ": encoder_hidden_states must be (B, T, " +
                     std::to_string(config.joint_attention_dim) + ")");
  const auto dtype = hidden_states.scalar_type();
  const int64_t channels = config.timestep_guidance_channels;
  const auto t = timestep.reshape({-1}).to(dtype) * 1000;
  auto temb = timestep_embedder(dit::timestep_features(t, channels, true, 0).to(dtype));
  // diffusers adds the guidance embedding only when both the embedder and a guidance value are there.
  if (guidance.defined() && guidance_embedder) {
    const auto g = guidance.reshape({-1}).to(dtype) * 1000;
    temb = temb + guidance_embedder(dit::timestep_features(g, channels, true, 0).to(dtype));
  }
  const auto image_mod = double_stream_modulation_img(torch::silu(temb));
  const auto text_mod = double_stream_modulation_txt(torch::silu(temb));
  const auto single_mod = single_stream_modulation(torch::silu(temb));

  auto x = x_embedder(hidden_states);
  auto context = context_embedder(encoder_hidden_states);
  const int64_t text_len = context.size(1), image_len = x.size(1);
  const auto ids = joint_position_ids(txt_ids, img_ids, static_cast<int64_t>(config.axes_dims_rope.size()), kModel);
  if (ids.size(0) != text_len + image_len)
    throw InputError(std::string(kModel) + ": txt_ids and img_ids hold " + std::to_string(ids.size(0)) +
                     " positions for " + std::to_string(text_len) + " text and " + std::to_string(image_len) +
                     " image tokens");
  // diffusers embeds text and image ids apart and concatenates; each row depends on its own ids only.
  const auto rotary = mmdit::rotary_embedding(ids, config.axes_dims_rope, config.rope_theta);

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    auto& block = transformer_blocks[static_cast<std::size_t>(i)];
    if (checkpoint) {
      const auto run = [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
        return impl->forward(v[0], v[1], v[2], v[3], {v[4], v[5]});
      };
      std::tie(context, x) = mmdit::checkpointed_streams(run, {x, context, image_mod, text_mod, rotary.cos, rotary.sin},
                                                         *block, context.size(1));
    } else {
      std::tie(context, x) = block->forward(x, context, image_mod, text_mod, rotary);
    }
    if (i == tap) out.tapped = x;
  }
  auto hidden = torch::cat({context, x}, 1);
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    auto& block = single_transformer_blocks[static_cast<std::size_t>(i)];
    if (checkpoint) {
      hidden = diffusers::checkpointed(
          [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
            return impl->forward(v[0], v[1], {v[2], v[3]});
          },
          {hidden, single_mod, rotary.cos, rotary.sin}, diffusers::trainable_parameters(*block));
    } else {
      hidden = block->forward(hidden, single_mod, rotary);
    }
    if (config.num_layers + i == tap) out.tapped = hidden.narrow(1, text_len, image_len);
  }
  x = hidden.narrow(1, text_len, image_len);
  out.prediction = proj_out(norm_out(x, temb));
  return out;
}

void Flux2TransformerImpl::load_weights(const std::string& path) {
  if (std::filesystem::is_directory(path)) return mmdit::load_transformer_weights(*this, path);
  const auto checkpoint = io::SafetensorsCheckpoint::open(path);
  const auto names = checkpoint.names();
  if (is_sd3_official_naming(names))
    throw InputError(path + " holds SD3 tensors (joint_blocks.*): it is not a Flux.2 transformer");
  if (!is_flux_official_naming(names)) return mmdit::load_transformer_weights(*this, path);
  // A Black Forest Labs Flux.2 single file: its names are mapped to diffusers' first.
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : names) tensors[name] = checkpoint.tensor(name, /*view=*/true);
  nn::load_state(*this, flux2_official_to_diffusers(tensors, path), path);
}

}  // namespace repa::models
