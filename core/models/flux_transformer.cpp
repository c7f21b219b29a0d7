#include "core/models/flux_transformer.h"

#include <filesystem>
#include <map>
#include <numeric>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"
#include "core/models/flux_official_names.h"
#include "core/models/sd3_official_names.h"
#include "core/nn/state_loading.h"

namespace repa::models {

namespace {

void require_positive(const std::string& model, int64_t value, const std::string& key) {
  if (value <= 0) throw InputError(model + " config: " + key + " must be positive, got " + std::to_string(value));
}

mmdit::JointAttentionOptions flux_attention(int64_t dim, int64_t heads, int64_t head_dim, bool joint) {
  mmdit::JointAttentionOptions o;
  o.dim = dim;
  o.heads = heads;
  o.dim_head = head_dim;
  o.qk_norm = dit::QKNorm::RMSNorm;  // FluxAttention always has RMS qk-norms with weights
  o.eps = 1e-6;
  o.added_kv = joint;
  o.pre_only = !joint;  // the single-stream blocks project attention and MLP together in proj_out
  o.text_first = true;
  return o;
}

}  // namespace

void validate_flux_layout(const std::string& model, int64_t heads, int64_t head_dim, const std::vector<int64_t>& axes) {
  require_positive(model, heads, "num_attention_heads");
  require_positive(model, head_dim, "attention_head_dim");
  if (axes.empty()) throw InputError(model + " config: axes_dims_rope must list at least one axis");
  for (const auto d : axes)
    if (d <= 0 || d % 2 != 0)
      throw InputError(model + " config: every axes_dims_rope entry must be a positive even number, got " +
                       std::to_string(d));
  const int64_t sum = std::accumulate(axes.begin(), axes.end(), int64_t{0});
  if (sum != head_dim)
    throw InputError(model + " config: axes_dims_rope sums to " + std::to_string(sum) +
                     " but the rotary embedding must cover attention_head_dim " + std::to_string(head_dim));
}

FluxTransformerConfig FluxTransformerConfig::from_json(const nlohmann::json& json) {
  using namespace diffusers;
  if (!json.is_object()) throw InputError("FluxTransformer2DModel config: expected a JSON object");
  FluxTransformerConfig c;
  c.patch_size = config_int(json, "patch_size", c.patch_size);
  c.in_channels = config_int(json, "in_channels", c.in_channels);
  // `out_channels or in_channels`: null and 0 both mean in_channels.
  c.out_channels = config_int(json, "out_channels", 0);
  if (c.out_channels == 0) c.out_channels = c.in_channels;
  c.num_layers = config_int(json, "num_layers", c.num_layers);
  c.num_single_layers = config_int(json, "num_single_layers", c.num_single_layers);
  c.attention_head_dim = config_int(json, "attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = config_int(json, "num_attention_heads", c.num_attention_heads);
  c.joint_attention_dim = config_int(json, "joint_attention_dim", c.joint_attention_dim);
  c.pooled_projection_dim = config_int(json, "pooled_projection_dim", c.pooled_projection_dim);
  c.guidance_embeds = config_bool(json, "guidance_embeds", c.guidance_embeds);
  c.axes_dims_rope = config_ints(json, "axes_dims_rope", c.axes_dims_rope);
  c.validate();
  return c;
}

void FluxTransformerConfig::validate() const {
  const std::string model = "FluxTransformer2DModel";
  require_positive(model, patch_size, "patch_size");
  require_positive(model, in_channels, "in_channels");
  require_positive(model, out_channels, "out_channels");
  if (num_layers < 0) throw InputError(model + " config: num_layers must not be negative");
  if (num_single_layers < 0) throw InputError(model + " config: num_single_layers must not be negative");
  require_positive(model, joint_attention_dim, "joint_attention_dim");
  require_positive(model, pooled_projection_dim, "pooled_projection_dim");
  validate_flux_layout(model, num_attention_heads, attention_head_dim, axes_dims_rope);
}

FluxDoubleBlockImpl::FluxDoubleBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, bool own) : own_modulation(own) {
  if (own) {
    norm1 = register_module("norm1", mmdit::AdaLayerNormZero(dim, 6));
    norm1_context = register_module("norm1_context", mmdit::AdaLayerNormZero(dim, 6));
  }
  attn = register_module("attn", mmdit::JointAttention(flux_attention(dim, heads, head_dim, true)));
  dit::FeedForwardOptions fo;
  fo.dim = dim;
  fo.activation = dit::FeedForwardActivation::GELUTanh;
  ff = register_module("ff", dit::FeedForward(fo));
  ff_context = register_module("ff_context", dit::FeedForward(fo));
}

std::pair<torch::Tensor, torch::Tensor> FluxDoubleBlockImpl::forward(
    const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& image_mod, const torch::Tensor& text_mod,
    const mmdit::Rotary& rotary, const torch::Tensor& key_bias, const torch::Tensor& query_keep) {
  const auto m = own_modulation ? norm1(image_mod) : image_mod.unbind(1);
  const auto cm = own_modulation ? norm1_context(text_mod) : text_mod.unbind(1);
  auto [attn_x, attn_context] = attn(mmdit::norm_modulate(x, m[0], m[1]), mmdit::norm_modulate(context, cm[0], cm[1]),
                                     rotary, key_bias, query_keep);
  auto h = x + m[2].unsqueeze(1) * attn_x;
  h = h + m[5].unsqueeze(1) * ff(mmdit::norm_modulate(h, m[3], m[4]));
  auto c = context + cm[2].unsqueeze(1) * attn_context;
  c = c + cm[5].unsqueeze(1) * ff_context(mmdit::norm_modulate(c, cm[3], cm[4]));
  if (c.scalar_type() == torch::kHalf) c = c.clamp(-65504, 65504);  // as diffusers, against fp16 overflow
  return {c, h};
}

FluxSingleBlockImpl::FluxSingleBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, bool own) : own_modulation(own) {
  const int64_t mlp_hidden = static_cast<int64_t>(static_cast<double>(dim) * 4.0);
  if (own) norm = register_module("norm", mmdit::AdaLayerNormZero(dim, 3));
  proj_mlp = register_module("proj_mlp", diffusers::Linear(dim, mlp_hidden));
  proj_out = register_module("proj_out", diffusers::Linear(dim + mlp_hidden, dim));
  attn = register_module("attn", mmdit::JointAttention(flux_attention(dim, heads, head_dim, false)));
}

torch::Tensor FluxSingleBlockImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mod,
                                           const mmdit::Rotary& rotary, const torch::Tensor& key_bias,
                                           const torch::Tensor& query_keep) {
  const auto m = own_modulation ? norm(mod) : mod.unbind(1);
  const auto normed = mmdit::norm_modulate(hidden, m[0], m[1]);
  const auto mlp = torch::gelu(proj_mlp(normed), "tanh");
  const auto attended = attn(normed, torch::Tensor(), rotary, key_bias, query_keep).first;
  auto out = hidden + m[2].unsqueeze(1) * proj_out(torch::cat({attended, mlp}, 2));
  if (out.scalar_type() == torch::kHalf) out = out.clamp(-65504, 65504);
  return out;
}

std::pair<torch::Tensor, torch::Tensor> run_double_block(FluxDoubleBlock& block, bool checkpoint,
                                                         const torch::Tensor& x, const torch::Tensor& context,
                                                         const torch::Tensor& image_mod, const torch::Tensor& text_mod,
                                                         const mmdit::Rotary& rotary, const torch::Tensor& key_bias,
                                                         const torch::Tensor& query_keep) {
  if (!checkpoint) return block->forward(x, context, image_mod, text_mod, rotary, key_bias, query_keep);
  const auto run = [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
    return impl->forward(v[0], v[1], v[2], v[3], {v[4], v[5]}, mmdit::defined_or_none(v[6]),
                         mmdit::defined_or_none(v[7]));
  };
  return mmdit::checkpointed_streams(run,
                                     {x, context, image_mod, text_mod, rotary.cos, rotary.sin,
                                      mmdit::or_empty(key_bias, x), mmdit::or_empty(query_keep, x)},
                                     *block, context.size(1));
}

torch::Tensor run_single_block(FluxSingleBlock& block, bool checkpoint, const torch::Tensor& hidden,
                               const torch::Tensor& mod, const mmdit::Rotary& rotary, const torch::Tensor& key_bias,
                               const torch::Tensor& query_keep) {
  if (!checkpoint) return block->forward(hidden, mod, rotary, key_bias, query_keep);
  return diffusers::checkpointed(
      [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
        return impl->forward(v[0], v[1], {v[2], v[3]}, mmdit::defined_or_none(v[4]), mmdit::defined_or_none(v[5]));
      },
      {hidden, mod, rotary.cos, rotary.sin, mmdit::or_empty(key_bias, hidden), mmdit::or_empty(query_keep, hidden)},
      diffusers::trainable_parameters(*block));
}

torch::Tensor joint_position_ids(const torch::Tensor& txt_ids, const torch::Tensor& img_ids, int64_t axes,
                                 const std::string& model) {
  const auto two_d = [&](const torch::Tensor& ids, const std::string& name) {
    if (!ids.defined())
      throw InputError(model + ": " + name + " (positions, " + std::to_string(axes) + " axes) is required");
    const auto t = ids.dim() == 3 ? ids.select(0, 0) : ids;  // diffusers' deprecated batched form: first row
    if (t.dim() != 2 || t.size(1) != axes)
      throw InputError(model + ": " + name + " must be (S, " + std::to_string(axes) + "), got " +
                       c10::str(ids.sizes()));
    return t;
  };
  return torch::cat({two_d(txt_ids, "txt_ids"), two_d(img_ids, "img_ids")}, 0);
}

FluxTransformerImpl::FluxTransformerImpl(const FluxTransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim();
  time_text_embed = register_module(
      "time_text_embed", mmdit::TimestepTextEmbeddings(dim, config.pooled_projection_dim, config.guidance_embeds));
  context_embedder = register_module("context_embedder", diffusers::Linear(config.joint_attention_dim, dim));
  x_embedder = register_module("x_embedder", diffusers::Linear(config.in_channels, dim));
  auto doubles = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    transformer_blocks.push_back(
        FluxDoubleBlock(dim, config.num_attention_heads, config.attention_head_dim, /*own_modulation=*/true));
    doubles->push_back(transformer_blocks.back());
  }
  auto singles = register_module("single_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    single_transformer_blocks.push_back(
        FluxSingleBlock(dim, config.num_attention_heads, config.attention_head_dim, /*own_modulation=*/true));
    singles->push_back(single_transformer_blocks.back());
  }
  norm_out = register_module("norm_out", mmdit::AdaLayerNormContinuous(dim, dim));
  proj_out =
      register_module("proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels));
}

DiTOutput FluxTransformerImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                                       const torch::Tensor& pooled_projections, const torch::Tensor& timestep,
                                       const torch::Tensor& img_ids, const torch::Tensor& txt_ids,
                                       const torch::Tensor& guidance, int64_t tap,
                                       const torch::Tensor& attention_mask) {
  const std::string model = "FluxTransformer2DModel";
  check_tap_index(tap, num_double_blocks(), num_single_blocks(), model);
  if (!hidden_states.defined() || hidden_states.dim() != 3 || hidden_states.size(2) != config.in_channels)
    throw InputError(model + ": hidden_states must be packed latents (B, N, " + std::to_string(config.in_channels) +
                     ")");
  if (!encoder_hidden_states.defined() || encoder_hidden_states.dim() != 3 ||
      encoder_hidden_states.size(2) != config.joint_attention_dim)
    throw InputError(model + ": encoder_hidden_states must be (B, T, " + std::to_string(config.joint_attention_dim) +
                     ")");
  auto x = x_embedder(hidden_states);
  const auto dtype = x.scalar_type();
  const auto t = timestep.reshape({-1}).to(dtype) * 1000;
  const auto g = guidance.defined() ? guidance.reshape({-1}).to(dtype) * 1000 : guidance;
  const auto temb = time_text_embed(t, g, pooled_projections);
  auto context = context_embedder(encoder_hidden_states);
  const auto ids = joint_position_ids(txt_ids, img_ids, static_cast<int64_t>(config.axes_dims_rope.size()), model);
  if (ids.size(0) != context.size(1) + x.size(1))
    throw InputError(model + ": txt_ids and img_ids hold " + std::to_string(ids.size(0)) + " positions for " +
                     std::to_string(context.size(1)) + " text and " + std::to_string(x.size(1)) + " image tokens");
  const auto rotary = mmdit::rotary_embedding(ids, config.axes_dims_rope, 10000.0);
  if (attention_mask.defined() &&
      (attention_mask.dim() != 2 || attention_mask.size(0) != x.size(0) || attention_mask.size(1) != ids.size(0)))
    throw InputError(model + ": attention_mask must be (B, T + N) = (" + std::to_string(x.size(0)) + ", " +
                     std::to_string(ids.size(0)) + "), got " + c10::str(attention_mask.sizes()));
  const auto [key_bias, query_keep] = mmdit::joint_mask(attention_mask, dtype);

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    std::tie(context, x) = run_double_block(transformer_blocks[static_cast<std::size_t>(i)], checkpoint, x, context,
                                            temb, temb, rotary, key_bias, query_keep);
    if (i == tap) out.tapped = x;  // the image stream after the double block
  }
  const int64_t text_len = context.size(1);
  auto hidden = torch::cat({context, x}, 1);
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    hidden = run_single_block(single_transformer_blocks[static_cast<std::size_t>(i)], checkpoint, hidden, temb, rotary,
                              key_bias, query_keep);
    // SimpleTuner cuts the text prefix off the single-stream state.
    if (config.num_layers + i == tap) out.tapped = hidden.narrow(1, text_len, hidden.size(1) - text_len);
  }
  x = hidden.narrow(1, text_len, hidden.size(1) - text_len);
  out.prediction = proj_out(norm_out(x, temb));
  return out;
}

void FluxTransformerImpl::load_weights(const std::string& path) {
  if (std::filesystem::is_directory(path)) return mmdit::load_transformer_weights(*this, path);
  const auto checkpoint = io::SafetensorsCheckpoint::open(path);
  const auto names = checkpoint.names();
  if (is_sd3_official_naming(names))
    throw InputError(path + " holds SD3 tensors (joint_blocks.*): it is not a Flux transformer");
  if (!is_flux_official_naming(names)) return mmdit::load_transformer_weights(*this, path);
  // A Black Forest Labs single file: its names are mapped to diffusers' first.
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : names) tensors[name] = checkpoint.tensor(name, /*view=*/true);
  nn::load_state(*this, flux_official_to_diffusers(tensors, path), path);
}

}  // namespace repa::models
