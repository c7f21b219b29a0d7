#include "core/models/sana_transformer.h"

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

}  // namespace

SanaTransformerConfig SanaTransformerConfig::from_diffusers(const nlohmann::json& j) {
  using namespace diffusers;
  if (!j.is_object()) throw InputError("SanaTransformer2DModel config: expected a JSON object");
  SanaTransformerConfig c;
  c.in_channels = config_int(j, "in_channels", c.in_channels);
  c.out_channels = config_int(j, "out_channels", is_null(j, "out_channels") ? 0 : c.out_channels);
  if (c.out_channels == 0) c.out_channels = c.in_channels;  // diffusers: out_channels or in_channels
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads);
  c.attention_head_dim = config_int(j, "attention_head_dim", c.attention_head_dim);
  c.num_layers = config_int(j, "num_layers", c.num_layers);
  c.num_cross_attention_heads = config_int(j, "num_cross_attention_heads", c.num_cross_attention_heads);
  c.cross_attention_head_dim = config_int(j, "cross_attention_head_dim", c.cross_attention_head_dim);
  if (is_null(j, "cross_attention_dim"))
    throw InputError(
        "config key 'cross_attention_dim' = null is not supported: SanaTransformer2DModel's blocks need "
        "the cross-attention (its norm2 exists only with it)");
  c.cross_attention_dim = config_int(j, "cross_attention_dim", c.cross_attention_dim);
  c.caption_channels = config_int(j, "caption_channels", c.caption_channels);
  c.mlp_ratio = config_double(j, "mlp_ratio", c.mlp_ratio);
  c.dropout = config_double(j, "dropout", c.dropout);
  c.attention_bias = config_bool(j, "attention_bias", c.attention_bias);
  c.sample_size = config_int(j, "sample_size", c.sample_size);
  c.patch_size = config_int(j, "patch_size", c.patch_size);
  c.norm_elementwise_affine = config_bool(j, "norm_elementwise_affine", c.norm_elementwise_affine);
  c.norm_eps = config_double(j, "norm_eps", c.norm_eps);
  c.interpolation_scale = config_double(j, "interpolation_scale", 0.0);
  c.guidance_embeds = config_bool(j, "guidance_embeds", c.guidance_embeds);
  c.guidance_embeds_scale = config_double(j, "guidance_embeds_scale", c.guidance_embeds_scale);
  c.qk_norm = config_string(j, "qk_norm", "");
  c.timestep_scale = config_double(j, "timestep_scale", c.timestep_scale);
  c.validate();
  return c;
}

void SanaTransformerConfig::validate() const {
  const auto positive = [](int64_t v, const char* key) {
    if (v <= 0) throw InputError(std::string("config key '") + key + "' must be positive, got " + std::to_string(v));
  };
  positive(in_channels, "in_channels");
  positive(out_channels, "out_channels");
  positive(num_attention_heads, "num_attention_heads");
  positive(attention_head_dim, "attention_head_dim");
  positive(num_layers, "num_layers");
  positive(num_cross_attention_heads, "num_cross_attention_heads");
  positive(cross_attention_head_dim, "cross_attention_head_dim");
  positive(cross_attention_dim, "cross_attention_dim");
  positive(caption_channels, "caption_channels");
  positive(sample_size, "sample_size");
  positive(patch_size, "patch_size");
  if (!(mlp_ratio > 0.0)) throw InputError("config key 'mlp_ratio' must be positive");
  if (dropout < 0.0 || dropout >= 1.0) throw InputError("config key 'dropout' must be in [0, 1)");
  if (interpolation_scale < 0.0) throw InputError("config key 'interpolation_scale' must be positive or null");
  if (interpolation_scale > 0.0 && inner_dim() % 4)
    throw InputError("num_attention_heads x attention_head_dim = " + std::to_string(inner_dim()) +
                     " must be divisible by 4 for the sin-cos positions interpolation_scale asks for");
  if (cross_attention_dim != inner_dim())
    throw InputError("config key 'cross_attention_dim' = " + std::to_string(cross_attention_dim) +
                     " must equal num_attention_heads x attention_head_dim = " + std::to_string(inner_dim()) +
                     " (the captions are projected to that width)");
  // Sana's processors norm q and k before splitting heads, so only the across-heads norms fit the width.
  if (!qk_norm.empty() && qk_norm != "rms_norm_across_heads" && qk_norm != "layer_norm_across_heads") {
    dit::parse_qk_norm(qk_norm, "qk_norm");  // unknown names get the full list
    throw InputError("config key 'qk_norm' = '" + qk_norm +
                     "' is not supported by SanaTransformer2DModel (null, rms_norm_across_heads or "
                     "layer_norm_across_heads)");
  }
}

SanaTimestepGuidanceEmbeddingsImpl::SanaTimestepGuidanceEmbeddingsImpl(int64_t dim) {
  timestep_embedder = register_module("timestep_embedder", dit::TimestepEmbedding(256, dim));
  guidance_embedder = register_module("guidance_embedder", dit::TimestepEmbedding(256, dim));
  linear = register_module("linear", diffusers::Linear(dim, 6 * dim));
}

std::pair<torch::Tensor, torch::Tensor> SanaTimestepGuidanceEmbeddingsImpl::forward(const torch::Tensor& timestep,
                                                                                    const torch::Tensor& guidance,
                                                                                    torch::ScalarType hidden_dtype) {
  const auto t = timestep_embedder(dit::timestep_features(timestep, 256, true, 0).to(hidden_dtype));
  const auto g = guidance_embedder(dit::timestep_features(guidance, 256, true, 0).to(hidden_dtype));
  const auto conditioning = t + g;
  return {linear(torch::silu(conditioning)), conditioning};
}

DepthwiseConv2dImpl::DepthwiseConv2dImpl(int64_t c, int64_t k) : channels(c), kernel_size(k) {
  weight = register_parameter("weight", torch::empty({c, 1, k, k}));
  bias = register_parameter("bias", torch::empty({c}));
  if (diffusers::ParameterInitScope::current() == diffusers::ParameterInit::Default) {
    torch::NoGradGuard no_grad;
    const double bound = 1.0 / std::sqrt(static_cast<double>(k * k));  // fan_in of one group
    weight.uniform_(-bound, bound);
    bias.uniform_(-bound, bound);
  }
}

torch::Tensor DepthwiseConv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, weight, bias, 1, kernel_size / 2, 1, channels);
}

GLUMBConvImpl::GLUMBConvImpl(int64_t in_channels, int64_t out_channels, double expand_ratio) {
  const auto hidden = static_cast<int64_t>(expand_ratio * static_cast<double>(in_channels));
  conv_inverted = register_module("conv_inverted", diffusers::Conv2d(in_channels, hidden * 2, 1, 1, 0));
  conv_depth = register_module("conv_depth", DepthwiseConv2d(hidden * 2, 3));
  conv_point = register_module("conv_point", diffusers::Conv2d(hidden, out_channels, 1, 1, 0, /*bias=*/false));
}

torch::Tensor GLUMBConvImpl::forward(const torch::Tensor& x) {
  const auto parts = conv_depth(torch::silu(conv_inverted(x))).chunk(2, 1);
  return conv_point(parts[0] * torch::silu(parts[1]));
}

torch::Tensor linear_attention(dit::AttentionImpl& attention, const torch::Tensor& x) {
  torch::Tensor q, k, v;
  attention.project(x, torch::Tensor(), q, k, v);
  const int64_t heads = attention.options.heads;
  const auto dtype = x.scalar_type();
  // (B, N, H·Dh) → (B, H, Dh, N), as the reference lays the heads out.
  const auto heads_first = [&](const torch::Tensor& t) { return t.transpose(1, 2).unflatten(1, {heads, -1}); };
  const auto query = torch::relu(heads_first(q)).to(torch::kFloat32);
  const auto key = torch::relu(heads_first(k)).transpose(2, 3).to(torch::kFloat32);  // (B, H, N, Dh)
  // A row of ones under v makes the same matmuls produce the normaliser Σ_j φ(q_i)·φ(k_j) as the last row.
  const auto value = torch::constant_pad_nd(heads_first(v).to(torch::kFloat32), {0, 0, 0, 1}, 1.0);
  auto h = torch::matmul(torch::matmul(value, key), query);  // (B, H, Dh + 1, N)
  const int64_t rows = h.size(2);
  h = h.narrow(2, 0, rows - 1) / (h.narrow(2, rows - 1, 1) + 1e-15);
  auto out = attention.output(h.flatten(1, 2).transpose(1, 2).to(dtype));
  if (dtype == torch::kHalf) out = out.clamp(-65504, 65504);
  return out;
}

SanaTransformerBlockImpl::SanaTransformerBlockImpl(const SanaTransformerConfig& c) {
  const int64_t dim = c.inner_dim();
  const auto qk_norm = dit::parse_qk_norm(c.qk_norm, "qk_norm");
  norm1 = register_module("norm1", diffusers::LayerNorm(dim, c.norm_eps, false));
  dit::AttentionOptions self;
  self.query_dim = dim;
  self.heads = c.num_attention_heads;
  self.dim_head = c.attention_head_dim;
  self.bias = c.attention_bias;
  self.qk_norm = qk_norm;
  self.dropout = c.dropout;
  attn1 = register_module("attn1", dit::Attention(self));
  norm2 = register_module("norm2", diffusers::LayerNorm(dim, c.norm_eps, c.norm_elementwise_affine));
  dit::AttentionOptions cross;
  cross.query_dim = dim;
  cross.cross_attention_dim = c.cross_attention_dim;
  cross.heads = c.num_cross_attention_heads;
  cross.dim_head = c.cross_attention_head_dim;
  cross.bias = true;
  cross.qk_norm = qk_norm;
  cross.dropout = c.dropout;
  attn2 = register_module("attn2", dit::Attention(cross));
  ff = register_module("ff", GLUMBConv(dim, dim, c.mlp_ratio));
  scale_shift_table =
      register_parameter("scale_shift_table", torch::randn({6, dim}) / std::sqrt(static_cast<double>(dim)));
}

torch::Tensor SanaTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& modulation,
                                                const torch::Tensor& context, const torch::Tensor& context_bias,
                                                int64_t grid_h, int64_t grid_w) {
  // shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, each (B, 1, D).
  const auto m = (scale_shift_table.unsqueeze(0) + modulation.reshape({x.size(0), 6, -1})).chunk(6, 1);
  const auto normed = (norm1(x) * (1 + m[1]) + m[0]).to(x.scalar_type());
  auto h = x + m[2] * linear_attention(*attn1, normed);
  h = attn2->forward(h, context, context_bias) + h;
  // The feed-forward convolves over the token grid: (B, h·w, D) → (B, D, h, w) and back.
  const auto grid = (norm2(h) * (1 + m[4]) + m[3]).unflatten(1, {grid_h, grid_w}).permute({0, 3, 1, 2});
  return h + m[5] * ff(grid).flatten(2, 3).permute({0, 2, 1});
}

SanaTransformerImpl::SanaTransformerImpl(const SanaTransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim();
  dit::PatchEmbedOptions patch;
  patch.height = patch.width = config.sample_size;
  patch.patch_size = config.patch_size;
  patch.in_channels = config.in_channels;
  patch.embed_dim = dim;
  patch.sincos = config.interpolation_scale > 0.0;
  patch.interpolation_scale = patch.sincos ? config.interpolation_scale : 1.0;
  patch_embed = register_module("patch_embed", dit::PatchEmbed(patch));
  if (config.guidance_embeds) {
    time_embed_guidance = register_module("time_embed", SanaTimestepGuidanceEmbeddings(dim));
  } else {
    time_embed = register_module("time_embed", dit::AdaLayerNormSingle(dim, false));
  }
  caption_projection = register_module("caption_projection", dit::TextProjection(config.caption_channels, dim));
  caption_norm = register_module("caption_norm", dit::RMSNorm(dim, 1e-5, true));
  auto list = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    blocks.push_back(SanaTransformerBlock(config));
    list->push_back(blocks.back());
  }
  scale_shift_table =
      register_parameter("scale_shift_table", torch::randn({2, dim}) / std::sqrt(static_cast<double>(dim)));
  norm_out = register_module("norm_out", diffusers::LayerNorm(dim, 1e-6, false));
  proj_out =
      register_module("proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels));
}

DiTOutput SanaTransformerImpl::forward(const SanaInputs& in, int64_t tap) {
  check_tap_index(tap, 0, num_blocks(), "SanaTransformer2DModel (transformer_blocks)");
  const auto& x = in.hidden_states;
  if (!x.defined() || x.dim() != 4) throw InputError("SanaTransformer2DModel: hidden_states must be (B, C, H, W)");
  if (!in.timestep.defined()) throw InputError("SanaTransformer2DModel: timestep (B,) is required");
  if (!in.encoder_hidden_states.defined())
    throw InputError("SanaTransformer2DModel: encoder_hidden_states (B, T, caption_channels) are required");
  if (config.guidance_embeds != in.guidance.defined())
    throw InputError(config.guidance_embeds
                         ? "SanaTransformer2DModel: guidance (B,) is required (guidance_embeds is true)"
                         : "SanaTransformer2DModel: guidance was given but guidance_embeds is false");
  const int64_t batch = x.size(0), p = config.patch_size, dim = config.inner_dim();
  const int64_t grid_h = x.size(2) / p, grid_w = x.size(3) / p;
  const auto context_bias =
      dit::keep_mask_to_bias(in.encoder_attention_mask, x.scalar_type(), "encoder_attention_mask");

  auto h = patch_embed(x);
  const auto [modulation, embedded] =
      config.guidance_embeds ? time_embed_guidance(in.timestep, in.guidance, h.scalar_type())
                             : time_embed->forward(in.timestep, torch::Tensor(), torch::Tensor(), h.scalar_type());
  const auto context = caption_norm(caption_projection(in.encoder_hidden_states).view({batch, -1, dim}));

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < num_blocks(); ++i) {
    auto& block = blocks[static_cast<std::size_t>(i)];
    if (checkpoint) {
      const bool has_bias = context_bias.defined();
      std::vector<torch::Tensor> inputs{h, modulation, context};
      if (has_bias) inputs.push_back(context_bias);
      h = diffusers::checkpointed(
          [impl = block.ptr(), has_bias, grid_h, grid_w](const std::vector<torch::Tensor>& v) {
            return impl->forward(v[0], v[1], v[2], has_bias ? v[3] : torch::Tensor(), grid_h, grid_w);
          },
          inputs, diffusers::trainable_parameters(*block));
    } else {
      h = block->forward(h, modulation, context, context_bias, grid_h, grid_w);
    }
    if (i == tap) out.tapped = h;
  }

  const auto shift_scale = (scale_shift_table.unsqueeze(0) + embedded.unsqueeze(1)).chunk(2, 1);
  h = proj_out(norm_out(h) * (1 + shift_scale[1]) + shift_scale[0]);
  out.prediction = h.reshape({batch, grid_h, grid_w, p, p, config.out_channels})
                       .permute({0, 5, 1, 3, 2, 4})
                       .reshape({batch, config.out_channels, grid_h * p, grid_w * p});
  return out;
}

}  // namespace repa::models
