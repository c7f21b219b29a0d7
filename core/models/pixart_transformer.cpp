#include "core/models/pixart_transformer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/base/error.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"

namespace repa::models {

namespace {

bool is_null(const nlohmann::json& config, const std::string& key) {
  return config.is_object() && config.contains(key) && config.at(key).is_null();
}

std::string input_message(const std::string& what) {
  return "PixArtTransformer2DModel: " + what;
}

}  // namespace

PixArtTransformerConfig PixArtTransformerConfig::from_diffusers(const nlohmann::json& j) {
  using namespace diffusers;
  if (!j.is_object()) throw InputError("PixArtTransformer2DModel config: expected a JSON object");
  PixArtTransformerConfig c;
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads);
  c.attention_head_dim = config_int(j, "attention_head_dim", c.attention_head_dim);
  c.in_channels = config_int(j, "in_channels", c.in_channels);
  c.out_channels = is_null(j, "out_channels") ? c.in_channels : config_int(j, "out_channels", c.out_channels);
  c.num_layers = config_int(j, "num_layers", c.num_layers);
  c.dropout = config_double(j, "dropout", c.dropout);
  c.cross_attention_dim = is_null(j, "cross_attention_dim") ? 0 : config_int(j, "cross_attention_dim", 1152);
  c.attention_bias = config_bool(j, "attention_bias", c.attention_bias);
  c.sample_size = config_int(j, "sample_size", c.sample_size);
  c.patch_size = config_int(j, "patch_size", c.patch_size);
  c.activation_fn = config_string(j, "activation_fn", c.activation_fn);
  c.upcast_attention = config_bool(j, "upcast_attention", c.upcast_attention);
  c.norm_elementwise_affine = config_bool(j, "norm_elementwise_affine", c.norm_elementwise_affine);
  c.norm_eps = config_double(j, "norm_eps", c.norm_eps);
  c.interpolation_scale = config_has(j, "interpolation_scale")
                              ? config_double(j, "interpolation_scale", 1.0)
                              : static_cast<double>(std::max<int64_t>(c.sample_size / 64, 1));
  c.use_additional_conditions = config_has(j, "use_additional_conditions")
                                    ? config_bool(j, "use_additional_conditions", false)
                                    : c.sample_size == 128;
  c.caption_channels = config_int(j, "caption_channels", 0);

  // The class builds adaLN-single blocks only, and needs num_embeds_ada_norm to be set (its value is not used).
  config_require_one_of(j, "norm_type", {"ada_norm_single"});
  if (is_null(j, "norm_type")) throw InputError("config key 'norm_type' = null is not supported (ada_norm_single)");
  if (is_null(j, "num_embeds_ada_norm"))
    throw InputError(
        "config key 'num_embeds_ada_norm' is null: PixArtTransformer2DModel needs it with ada_norm_single");
  config_int(j, "num_embeds_ada_norm", 1000);  // type check
  // GLIGEN's gated attention (a `fuser` per block) is not built.
  config_require_one_of(j, "attention_type", {"default"});
  c.validate();
  return c;
}

void PixArtTransformerConfig::validate() const {
  const auto positive = [](int64_t v, const char* key) {
    if (v <= 0) throw InputError(std::string("config key '") + key + "' must be positive, got " + std::to_string(v));
  };
  positive(num_attention_heads, "num_attention_heads");
  positive(attention_head_dim, "attention_head_dim");
  positive(in_channels, "in_channels");
  positive(out_channels, "out_channels");
  positive(num_layers, "num_layers");
  positive(sample_size, "sample_size");
  positive(patch_size, "patch_size");
  if (cross_attention_dim < 0) positive(cross_attention_dim, "cross_attention_dim");
  if (caption_channels < 0) positive(caption_channels, "caption_channels");
  if (dropout < 0.0 || dropout >= 1.0)
    throw InputError("config key 'dropout' must be in [0, 1), got " + std::to_string(dropout));
  if (!(interpolation_scale > 0.0))
    throw InputError("config key 'interpolation_scale' must be positive, got " + std::to_string(interpolation_scale));
  if (inner_dim() % 4)
    throw InputError("num_attention_heads x attention_head_dim = " + std::to_string(inner_dim()) +
                     " must be divisible by 4 for the 2-D sin-cos positions");
  if (use_additional_conditions && inner_dim() % 3)
    throw InputError("config key 'use_additional_conditions': the width " + std::to_string(inner_dim()) +
                     " must be divisible by 3 for the resolution and aspect-ratio embeddings");
  if (caption_channels > 0 && cross_attention_dim > 0 && cross_attention_dim != inner_dim())
    throw InputError("config key 'cross_attention_dim' = " + std::to_string(cross_attention_dim) +
                     " must equal num_attention_heads x attention_head_dim = " + std::to_string(inner_dim()) +
                     " when caption_channels projects the captions to that width");
  dit::parse_feed_forward_activation(activation_fn, "activation_fn");
}

PixArtTransformerBlockImpl::PixArtTransformerBlockImpl(const PixArtTransformerConfig& c) {
  const int64_t dim = c.inner_dim();
  dit::AttentionOptions attention;
  attention.query_dim = dim;
  attention.heads = c.num_attention_heads;
  attention.dim_head = c.attention_head_dim;
  attention.bias = c.attention_bias;
  attention.dropout = c.dropout;
  attention.upcast = c.upcast_attention;
  norm1 = register_module("norm1", diffusers::LayerNorm(dim, c.norm_eps, c.norm_elementwise_affine));
  attn1 = register_module("attn1", dit::Attention(attention));
  // adaLN-single blocks have norm2 (before the feed-forward) even without cross-attention, and no norm3.
  norm2 = register_module("norm2", diffusers::LayerNorm(dim, c.norm_eps, c.norm_elementwise_affine));
  if (c.cross_attention_dim > 0) {
    attention.cross_attention_dim = c.cross_attention_dim;
    attn2 = register_module("attn2", dit::Attention(attention));
  }
  dit::FeedForwardOptions ff_options;
  ff_options.dim = dim;
  ff_options.dropout = c.dropout;
  ff_options.activation = dit::parse_feed_forward_activation(c.activation_fn, "activation_fn");
  ff = register_module("ff", dit::FeedForward(ff_options));
  scale_shift_table =
      register_parameter("scale_shift_table", torch::randn({6, dim}) / std::sqrt(static_cast<double>(dim)));
}

torch::Tensor PixArtTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& modulation,
                                                  const torch::Tensor& context, const torch::Tensor& context_bias,
                                                  const torch::Tensor& self_bias) {
  // shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, each (B, 1, D).
  const auto m = (scale_shift_table.unsqueeze(0) + modulation.reshape({x.size(0), 6, -1})).chunk(6, 1);
  auto h = m[2] * attn1->forward(norm1(x) * (1 + m[1]) + m[0], torch::Tensor(), self_bias) + x;
  if (attn2) h = attn2->forward(h, context, context_bias) + h;  // adaLN-single: no norm before the cross-attention
  return m[5] * ff(norm2(h) * (1 + m[4]) + m[3]) + h;
}

PixArtTransformerImpl::PixArtTransformerImpl(const PixArtTransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim();
  dit::PatchEmbedOptions patch;
  patch.height = patch.width = config.sample_size;
  patch.patch_size = config.patch_size;
  patch.in_channels = config.in_channels;
  patch.embed_dim = dim;
  patch.interpolation_scale = config.interpolation_scale;
  pos_embed = register_module("pos_embed", dit::PatchEmbed(patch));
  auto list = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    blocks.push_back(PixArtTransformerBlock(config));
    list->push_back(blocks.back());
  }
  norm_out = register_module("norm_out", diffusers::LayerNorm(dim, 1e-6, false));
  scale_shift_table =
      register_parameter("scale_shift_table", torch::randn({2, dim}) / std::sqrt(static_cast<double>(dim)));
  proj_out =
      register_module("proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels));
  adaln_single = register_module("adaln_single", dit::AdaLayerNormSingle(dim, config.use_additional_conditions));
  if (config.caption_channels > 0)
    caption_projection = register_module("caption_projection", dit::TextProjection(config.caption_channels, dim));
}

DiTOutput PixArtTransformerImpl::forward(const PixArtInputs& in, int64_t tap) {
  check_tap_index(tap, 0, num_blocks(), "PixArtTransformer2DModel (transformer_blocks)");
  const auto& x = in.hidden_states;
  if (!x.defined() || x.dim() != 4) throw InputError(input_message("hidden_states must be (B, C, H, W)"));
  if (!in.timestep.defined()) throw InputError(input_message("timestep (B,) is required"));
  if (blocks.front()->attn2 && !in.encoder_hidden_states.defined())
    throw InputError(input_message("encoder_hidden_states are required (the blocks cross-attend)"));
  const int64_t batch = x.size(0), p = config.patch_size, dim = config.inner_dim();
  const int64_t grid_h = x.size(2) / p, grid_w = x.size(3) / p;
  const auto dtype = x.scalar_type();
  const auto self_bias = dit::keep_mask_to_bias(in.attention_mask, dtype, "attention_mask");
  const auto context_bias = dit::keep_mask_to_bias(in.encoder_attention_mask, dtype, "encoder_attention_mask");

  auto h = pos_embed(x);
  const auto [modulation, embedded] = adaln_single(in.timestep, in.resolution, in.aspect_ratio, h.scalar_type());
  torch::Tensor context = in.encoder_hidden_states;
  if (caption_projection && context.defined()) context = caption_projection(context).view({batch, -1, dim});

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < num_blocks(); ++i) {
    auto& block = blocks[static_cast<std::size_t>(i)];
    if (checkpoint) {
      // Undefined inputs travel as empty tensors: the checkpoint keeps only defined ones.
      const auto or_empty = [&](const torch::Tensor& t) { return t.defined() ? t : torch::empty({0}, h.options()); };
      const auto defined_or_none = [](const torch::Tensor& t) { return t.numel() ? t : torch::Tensor(); };
      h = diffusers::checkpointed(
          [impl = block.ptr(), defined_or_none](const std::vector<torch::Tensor>& v) {
            return impl->forward(v[0], v[1], defined_or_none(v[2]), defined_or_none(v[3]), defined_or_none(v[4]));
          },
          {h, modulation, or_empty(context), or_empty(context_bias), or_empty(self_bias)},
          diffusers::trainable_parameters(*block));
    } else {
      h = block->forward(h, modulation, context, context_bias, self_bias);
    }
    if (i == tap) out.tapped = h;
  }

  const auto shift_scale = (scale_shift_table.unsqueeze(0) + embedded.unsqueeze(1)).chunk(2, 1);
  h = proj_out(norm_out(h) * (1 + shift_scale[1]) + shift_scale[0]);
  // (B, h·w, p·p·C) → (B, C, h·p, w·p): diffusers' einsum "nhwpqc->nchpwq".
  out.prediction = h.reshape({batch, grid_h, grid_w, p, p, config.out_channels})
                       .permute({0, 5, 1, 3, 2, 4})
                       .reshape({batch, config.out_channels, grid_h * p, grid_w * p});
  return out;
}

}  // namespace repa::models
