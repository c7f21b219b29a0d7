#include "core/models/sd3_transformer.h"

#include <algorithm>
#include <filesystem>
#include <map>
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

void require_positive(int64_t value, const std::string& key) {
  if (value <= 0)
    throw InputError("SD3Transformer2DModel config: " + key + " must be positive, got " + std::to_string(value));
}

}  // namespace

SD3TransformerConfig SD3TransformerConfig::from_json(const nlohmann::json& json) {
  using namespace diffusers;
  if (!json.is_object()) throw InputError("SD3Transformer2DModel config: expected a JSON object");
  SD3TransformerConfig c;
  c.sample_size = config_int(json, "sample_size", c.sample_size);
  c.patch_size = config_int(json, "patch_size", c.patch_size);
  c.in_channels = config_int(json, "in_channels", c.in_channels);
  c.num_layers = config_int(json, "num_layers", c.num_layers);
  c.attention_head_dim = config_int(json, "attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = config_int(json, "num_attention_heads", c.num_attention_heads);
  c.joint_attention_dim = config_int(json, "joint_attention_dim", c.joint_attention_dim);
  c.caption_projection_dim = config_int(json, "caption_projection_dim", c.caption_projection_dim);
  c.pooled_projection_dim = config_int(json, "pooled_projection_dim", c.pooled_projection_dim);
  // out_channels null means in_channels (diffusers: `out_channels if out_channels is not None else in_channels`).
  c.out_channels = config_has(json, "out_channels") ? config_int(json, "out_channels", 0) : c.in_channels;
  // pos_embed_max_size null: PatchEmbed computes positions for the grid instead of cropping a stored table.
  c.pos_embed_max_size = config_has(json, "pos_embed_max_size") ? config_int(json, "pos_embed_max_size", 0) : 0;
  c.dual_attention_layers = config_ints(json, "dual_attention_layers", {});
  c.qk_norm = config_string(json, "qk_norm", "");
  c.validate();
  return c;
}

void SD3TransformerConfig::validate() const {
  require_positive(sample_size, "sample_size");
  require_positive(patch_size, "patch_size");
  require_positive(in_channels, "in_channels");
  require_positive(num_layers, "num_layers");
  require_positive(attention_head_dim, "attention_head_dim");
  require_positive(num_attention_heads, "num_attention_heads");
  require_positive(joint_attention_dim, "joint_attention_dim");
  require_positive(caption_projection_dim, "caption_projection_dim");
  require_positive(pooled_projection_dim, "pooled_projection_dim");
  require_positive(out_channels, "out_channels");
  if (pos_embed_max_size < 0) throw InputError("SD3Transformer2DModel config: pos_embed_max_size must be positive");
  // The text stream enters the joint blocks, which are inner_dim wide.
  if (caption_projection_dim != inner_dim())
    throw InputError("SD3Transformer2DModel config: caption_projection_dim " + std::to_string(caption_projection_dim) +
                     " must equal num_attention_heads * attention_head_dim = " + std::to_string(inner_dim()) +
                     " (the joint blocks read the projected text at that width)");
  if (inner_dim() % 4 != 0)
    throw InputError("SD3Transformer2DModel config: num_attention_heads * attention_head_dim = " +
                     std::to_string(inner_dim()) + " must be divisible by 4 for the 2-D sin-cos positions");
  mmdit::parse_joint_qk_norm(qk_norm, "qk_norm");
}

SD3JointBlockImpl::SD3JointBlockImpl(const SD3TransformerConfig& c, bool pre_only, bool dual)
    : context_pre_only(pre_only), dual_attention(dual) {
  const int64_t dim = c.inner_dim();
  norm1 = register_module("norm1", mmdit::AdaLayerNormZero(dim, dual ? 9 : 6));
  if (pre_only)
    norm1_context_continuous = register_module("norm1_context", mmdit::AdaLayerNormContinuous(dim, dim));
  else
    norm1_context_zero = register_module("norm1_context", mmdit::AdaLayerNormZero(dim, 6));
  mmdit::JointAttentionOptions ao;
  ao.dim = dim;
  ao.heads = c.num_attention_heads;
  ao.dim_head = c.attention_head_dim;
  ao.qk_norm = mmdit::parse_joint_qk_norm(c.qk_norm, "qk_norm");
  ao.eps = 1e-6;
  ao.added_kv = true;
  ao.context_pre_only = pre_only;
  attn = register_module("attn", mmdit::JointAttention(ao));
  if (dual) {
    dit::AttentionOptions o;
    o.query_dim = dim;
    o.heads = c.num_attention_heads;
    o.dim_head = c.attention_head_dim;
    o.bias = true;
    o.qk_norm = ao.qk_norm;
    o.eps = 1e-6;
    attn2 = register_module("attn2", dit::Attention(o));
  }
  dit::FeedForwardOptions fo;
  fo.dim = dim;
  fo.activation = dit::FeedForwardActivation::GELUTanh;
  ff = register_module("ff", dit::FeedForward(fo));
  if (!pre_only) ff_context = register_module("ff_context", dit::FeedForward(fo));
}

std::pair<torch::Tensor, torch::Tensor> SD3JointBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                                                   const torch::Tensor& temb) {
  // Image modulation: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp (, shift/scale/gate_msa2).
  const auto m = norm1(temb);
  const auto normed = torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6);
  const auto norm_x = normed * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1);
  torch::Tensor norm_context;
  std::vector<torch::Tensor> cm;
  if (context_pre_only) {
    norm_context = norm1_context_continuous(context, temb);
  } else {
    cm = norm1_context_zero(temb);
    norm_context = mmdit::norm_modulate(context, cm[0], cm[1]);
  }
  auto [attn_x, attn_context] = attn(norm_x, norm_context);
  auto h = x + m[2].unsqueeze(1) * attn_x;
  if (dual_attention) {
    const auto norm_x2 = normed * (1 + m[7].unsqueeze(1)) + m[6].unsqueeze(1);
    h = h + m[8].unsqueeze(1) * attn2(norm_x2);
  }
  h = h + m[5].unsqueeze(1) * ff(mmdit::norm_modulate(h, m[3], m[4]));
  if (context_pre_only) return {torch::Tensor(), h};
  auto c = context + cm[2].unsqueeze(1) * attn_context;
  c = c + cm[5].unsqueeze(1) * ff_context(mmdit::norm_modulate(c, cm[3], cm[4]));
  return {c, h};
}

SD3TransformerImpl::SD3TransformerImpl(const SD3TransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim();
  dit::PatchEmbedOptions po;
  po.height = po.width = config.sample_size;
  po.patch_size = config.patch_size;
  po.in_channels = config.in_channels;
  po.embed_dim = dim;
  po.pos_embed_max_size = config.pos_embed_max_size;
  pos_embed = register_module("pos_embed", dit::PatchEmbed(po));
  time_text_embed =
      register_module("time_text_embed", mmdit::TimestepTextEmbeddings(dim, config.pooled_projection_dim, false));
  context_embedder =
      register_module("context_embedder", diffusers::Linear(config.joint_attention_dim, config.caption_projection_dim));
  auto blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  const auto& dual = config.dual_attention_layers;
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const bool is_dual = std::find(dual.begin(), dual.end(), i) != dual.end();
    transformer_blocks.push_back(SD3JointBlock(config, i == config.num_layers - 1, is_dual));
    blocks->push_back(transformer_blocks.back());
  }
  norm_out = register_module("norm_out", mmdit::AdaLayerNormContinuous(dim, dim));
  proj_out =
      register_module("proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels));
}

DiTOutput SD3TransformerImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                                      const torch::Tensor& pooled_projections, const torch::Tensor& timestep,
                                      int64_t tap) {
  check_tap_index(tap, num_double_blocks(), num_single_blocks(), "SD3Transformer2DModel");
  if (!encoder_hidden_states.defined() || encoder_hidden_states.dim() != 3 ||
      encoder_hidden_states.size(-1) != config.joint_attention_dim)
    throw InputError("SD3Transformer2DModel: encoder_hidden_states must be (B, T, " +
                     std::to_string(config.joint_attention_dim) + ")");
  if (!pooled_projections.defined() || pooled_projections.dim() != 2 ||
      pooled_projections.size(1) != config.pooled_projection_dim)
    throw InputError("SD3Transformer2DModel: pooled_projections must be (B, " +
                     std::to_string(config.pooled_projection_dim) + ")");
  const int64_t batch = hidden_states.size(0), p = config.patch_size;
  const int64_t grid_h = hidden_states.size(-2) / p, grid_w = hidden_states.size(-1) / p;
  auto x = pos_embed(hidden_states);
  const auto temb = time_text_embed(timestep.reshape({-1}), torch::Tensor(), pooled_projections);
  auto context = context_embedder(encoder_hidden_states);
  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    auto& block = transformer_blocks[static_cast<std::size_t>(i)];
    if (checkpoint) {
      const auto run = [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
        return impl->forward(v[0], v[1], v[2]);
      };
      std::tie(context, x) =
          mmdit::checkpointed_streams(run, {x, context, temb}, *block, block->context_pre_only ? 0 : context.size(1));
    } else {
      std::tie(context, x) = block->forward(x, context, temb);
    }
    if (i == tap) out.tapped = x;  // SimpleTuner stores the image stream after the block
  }
  x = proj_out(norm_out(x, temb));
  // (B, h·w, p·p·C) → (B, C, h·p, w·p): einsum "nhwpqc->nchpwq".
  x = x.reshape({batch, grid_h, grid_w, p, p, config.out_channels}).permute({0, 5, 1, 3, 2, 4});
  out.prediction = x.reshape({batch, config.out_channels, grid_h * p, grid_w * p});
  return out;
}

void SD3TransformerImpl::load_weights(const std::string& path) {
  if (std::filesystem::is_directory(path)) return mmdit::load_transformer_weights(*this, path);
  const auto checkpoint = io::SafetensorsCheckpoint::open(path);
  const auto names = checkpoint.names();
  if (is_flux_official_naming(names))
    throw InputError(path +
                     " holds Flux-layout tensors (double_blocks.*, single_blocks.*): it is not an SD3 transformer");
  if (!is_sd3_official_naming(names)) return mmdit::load_transformer_weights(*this, path);
  // An official single file: its names are mapped to diffusers' first (text encoders and autoencoder skipped).
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : names) tensors[name] = checkpoint.tensor(name, /*view=*/true);
  nn::load_state(*this, sd3_official_to_diffusers(tensors, path), path);
}

}  // namespace repa::models
