#include "core/models/auraflow_transformer.h"

#include <cmath>
#include <string>
#include <tuple>

#include "core/base/error.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"
#include "core/models/dit_layers.h"

namespace repa::models {

namespace {

constexpr int64_t kRegisterTokens = 8;

// FP32LayerNorm without affine (eps 1e-5): normalised in fp32, returned in the input's dtype.
torch::Tensor fp32_layer_norm(const torch::Tensor& x) {
  return torch::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, {}, {}, 1e-5).to(x.scalar_type());
}

}  // namespace

AuraFlowTransformerConfig AuraFlowTransformerConfig::from_diffusers(const nlohmann::json& j) {
  using namespace diffusers;
  if (!j.is_object()) throw InputError("AuraFlowTransformer2DModel config: expected a JSON object");
  AuraFlowTransformerConfig c;
  c.sample_size = config_int(j, "sample_size", c.sample_size);
  c.patch_size = config_int(j, "patch_size", c.patch_size);
  c.in_channels = config_int(j, "in_channels", c.in_channels);
  c.num_mmdit_layers = config_int(j, "num_mmdit_layers", c.num_mmdit_layers);
  c.num_single_dit_layers = config_int(j, "num_single_dit_layers", c.num_single_dit_layers);
  c.attention_head_dim = config_int(j, "attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads);
  c.joint_attention_dim = config_int(j, "joint_attention_dim", c.joint_attention_dim);
  c.caption_projection_dim = config_int(j, "caption_projection_dim", c.caption_projection_dim);
  const bool null_out = j.contains("out_channels") && j.at("out_channels").is_null();
  c.out_channels = null_out ? c.in_channels : config_int(j, "out_channels", c.out_channels);
  c.pos_embed_max_size = config_int(j, "pos_embed_max_size", c.pos_embed_max_size);
  c.validate();
  return c;
}

void AuraFlowTransformerConfig::validate() const {
  const auto positive = [](int64_t v, const char* key) {
    if (v <= 0) throw InputError(std::string("config key '") + key + "' must be positive, got " + std::to_string(v));
  };
  positive(sample_size, "sample_size");
  positive(patch_size, "patch_size");
  positive(in_channels, "in_channels");
  positive(attention_head_dim, "attention_head_dim");
  positive(num_attention_heads, "num_attention_heads");
  positive(joint_attention_dim, "joint_attention_dim");
  positive(caption_projection_dim, "caption_projection_dim");
  positive(out_channels, "out_channels");
  positive(pos_embed_max_size, "pos_embed_max_size");
  if (num_mmdit_layers < 0) positive(num_mmdit_layers, "num_mmdit_layers");
  if (num_single_dit_layers < 0) positive(num_single_dit_layers, "num_single_dit_layers");
  if (caption_projection_dim != inner_dim())
    throw InputError("config key 'caption_projection_dim' = " + std::to_string(caption_projection_dim) +
                     " must equal num_attention_heads x attention_head_dim = " + std::to_string(inner_dim()) +
                     " (the text stream shares the blocks' width)");
}

AuraFlowPatchEmbedImpl::AuraFlowPatchEmbedImpl(int64_t patch, int64_t channels, int64_t dim, int64_t max_size)
    : patch_size(patch), in_channels(channels), pos_embed_max_size(max_size) {
  proj = register_module("proj", diffusers::Linear(patch * patch * channels, dim));
  pos_embed = register_parameter("pos_embed", torch::randn({1, max_size, dim}) * 0.1);
}

torch::Tensor AuraFlowPatchEmbedImpl::position_indices(int64_t grid_h, int64_t grid_w) const {
  // The table is read as a square side × side grid (side = int(√max)); the window is centred on it.
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(pos_embed_max_size)));
  const int64_t top = side / 2 - grid_h / 2, left = side / 2 - grid_w / 2;
  if (top < 0 || left < 0 || top + grid_h > side || left + grid_w > side)
    throw InputError("AuraFlow: a " + std::to_string(grid_h) + "x" + std::to_string(grid_w) +
                     " token grid does not fit the " + std::to_string(side) + "x" + std::to_string(side) +
                     " position table (pos_embed_max_size " + std::to_string(pos_embed_max_size) + ")");
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(pos_embed.device());
  const auto rows = torch::arange(top, top + grid_h, options), cols = torch::arange(left, left + grid_w, options);
  return (rows.unsqueeze(1) * side + cols.unsqueeze(0)).flatten();
}

torch::Tensor AuraFlowPatchEmbedImpl::forward(const torch::Tensor& latent) {
  if (latent.dim() != 4 || latent.size(1) != in_channels)
    throw InputError("AuraFlow: expected hidden_states (B, " + std::to_string(in_channels) + ", H, W), got " +
                     c10::str(latent.sizes()));
  const int64_t b = latent.size(0), h = latent.size(2), w = latent.size(3), p = patch_size;
  if (h % p || w % p)
    throw InputError("AuraFlow: hidden_states " + std::to_string(h) + "x" + std::to_string(w) +
                     " is not divisible by patch_size " + std::to_string(p));
  // (B, C, h, p, w, p) → (B, h·w, C·p·p): each patch flattened channel-major.
  const auto patches =
      latent.reshape({b, in_channels, h / p, p, w / p, p}).permute({0, 2, 4, 1, 3, 5}).flatten(-3).flatten(1, 2);
  return proj(patches) + pos_embed.index_select(1, position_indices(h / p, w / p));
}

AuraFlowFeedForwardImpl::AuraFlowFeedForwardImpl(int64_t dim) {
  int64_t hidden = static_cast<int64_t>(2.0 * static_cast<double>(4 * dim) / 3.0);
  if (hidden % 256) hidden += 256 - hidden % 256;
  linear_1 = register_module("linear_1", diffusers::Linear(dim, hidden, false));
  linear_2 = register_module("linear_2", diffusers::Linear(dim, hidden, false));
  out_projection = register_module("out_projection", diffusers::Linear(hidden, dim, false));
}

torch::Tensor AuraFlowFeedForwardImpl::forward(const torch::Tensor& x) {
  return out_projection(torch::silu(linear_1(x)) * linear_2(x));
}

AuraFlowAttentionImpl::AuraFlowAttentionImpl(int64_t dim, int64_t h, int64_t dh, bool joint) : heads(h), dim_head(dh) {
  const int64_t inner = h * dh;
  to_q = register_module("to_q", diffusers::Linear(dim, inner, false));
  to_k = register_module("to_k", diffusers::Linear(dim, inner, false));
  to_v = register_module("to_v", diffusers::Linear(dim, inner, false));
  if (joint) {
    add_k_proj = register_module("add_k_proj", diffusers::Linear(dim, inner, false));
    add_v_proj = register_module("add_v_proj", diffusers::Linear(dim, inner, false));
    add_q_proj = register_module("add_q_proj", diffusers::Linear(dim, inner, false));
  }
  auto out_list = register_module("to_out", torch::nn::ModuleList());
  to_out = diffusers::Linear(inner, dim, false);
  out_list->push_back(to_out);
  if (joint) to_add_out = register_module("to_add_out", diffusers::Linear(inner, dim, false));
}

std::pair<torch::Tensor, torch::Tensor> AuraFlowAttentionImpl::forward(const torch::Tensor& x,
                                                                       const torch::Tensor& context) {
  // The fp32 LayerNorm qk-norm acts per head: view (B, S, H, Dh), norm the last dim, back to (B, S, H·Dh).
  const auto norm_heads = [&](const torch::Tensor& t) {
    return fp32_layer_norm(t.view({t.size(0), t.size(1), heads, dim_head})).flatten(2);
  };
  auto q = norm_heads(to_q(x)), k = norm_heads(to_k(x)), v = to_v(x);
  const bool joint = context.defined();
  if (joint) {
    if (!add_q_proj) throw InputError("AuraFlow: a single-stream attention was given a text stream");
    q = torch::cat({norm_heads(add_q_proj(context)), q}, 1);
    k = torch::cat({norm_heads(add_k_proj(context)), k}, 1);
    v = torch::cat({add_v_proj(context), v}, 1);
  }
  const auto attended = dit::multi_head_attention_with_bias(q.contiguous(), k.contiguous(), v.contiguous(), heads, {});
  if (!joint) return {to_out(attended), torch::Tensor()};
  const int64_t text = context.size(1);
  return {to_out(attended.narrow(1, text, attended.size(1) - text)), to_add_out(attended.narrow(1, 0, text))};
}

AuraFlowJointBlockImpl::AuraFlowJointBlockImpl(int64_t dim, int64_t heads, int64_t dim_head) {
  norm1 = register_module("norm1", mmdit::AdaLayerNormZero(dim, 6, false));
  norm1_context = register_module("norm1_context", mmdit::AdaLayerNormZero(dim, 6, false));
  attn = register_module("attn", AuraFlowAttention(dim, heads, dim_head, true));
  ff = register_module("ff", AuraFlowFeedForward(dim));
  ff_context = register_module("ff_context", AuraFlowFeedForward(dim));
}

namespace {

// The stream update of AuraFlow's blocks: the attention output joins the residual only inside the fp32 LayerNorm
// that feeds the feed-forward; the stream itself gains the gated feed-forward alone.
torch::Tensor stream_update(const torch::Tensor& residual, const torch::Tensor& attended,
                            const std::vector<torch::Tensor>& m, AuraFlowFeedForwardImpl& ff) {
  // m: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, each (B, D).
  auto h = fp32_layer_norm(residual + m[2].unsqueeze(1) * attended);
  h = h * (1 + m[4].unsqueeze(1)) + m[3].unsqueeze(1);
  return residual + m[5].unsqueeze(1) * ff.forward(h);
}

torch::Tensor pre_attention(const torch::Tensor& x, const std::vector<torch::Tensor>& m) {
  return fp32_layer_norm(x) * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1);
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> AuraFlowJointBlockImpl::forward(const torch::Tensor& x,
                                                                        const torch::Tensor& context,
                                                                        const torch::Tensor& temb) {
  const auto m = norm1(temb), mc = norm1_context(temb);
  const auto [attended, context_attended] = attn(pre_attention(x, m), pre_attention(context, mc));
  return {stream_update(context, context_attended, mc, *ff_context), stream_update(x, attended, m, *ff)};
}

AuraFlowSingleBlockImpl::AuraFlowSingleBlockImpl(int64_t dim, int64_t heads, int64_t dim_head) {
  norm1 = register_module("norm1", mmdit::AdaLayerNormZero(dim, 6, false));
  attn = register_module("attn", AuraFlowAttention(dim, heads, dim_head, false));
  ff = register_module("ff", AuraFlowFeedForward(dim));
}

torch::Tensor AuraFlowSingleBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  const auto m = norm1(temb);
  return stream_update(x, attn->forward(pre_attention(x, m), torch::Tensor()).first, m, *ff);
}

AuraFlowTransformerImpl::AuraFlowTransformerImpl(const AuraFlowTransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim();
  pos_embed = register_module(
      "pos_embed", AuraFlowPatchEmbed(config.patch_size, config.in_channels, dim, config.pos_embed_max_size));
  context_embedder = register_module(
      "context_embedder", diffusers::Linear(config.joint_attention_dim, config.caption_projection_dim, false));
  time_step_proj = register_module("time_step_proj", dit::TimestepEmbedding(256, dim));
  auto joint_list = register_module("joint_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_mmdit_layers; ++i) {
    joint_blocks.push_back(AuraFlowJointBlock(dim, config.num_attention_heads, config.attention_head_dim));
    joint_list->push_back(joint_blocks.back());
  }
  auto single_list = register_module("single_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_single_dit_layers; ++i) {
    single_blocks.push_back(AuraFlowSingleBlock(dim, config.num_attention_heads, config.attention_head_dim));
    single_list->push_back(single_blocks.back());
  }
  // AuraFlowPreFinalBlock: no norm, x · (1 + scale) + shift from a bias-free linear of SiLU(temb).
  auto norm_out = register_module("norm_out", std::make_shared<torch::nn::Module>());
  norm_out_linear = norm_out->register_module("linear", diffusers::Linear(dim, 2 * dim, false));
  proj_out = register_module(
      "proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels, false));
  register_tokens = register_parameter("register_tokens", torch::randn({1, kRegisterTokens, dim}) * 0.02);
}

DiTOutput AuraFlowTransformerImpl::forward(const AuraFlowInputs& in, int64_t tap) {
  const int64_t joint = config.num_mmdit_layers, single = config.num_single_dit_layers;
  check_tap_index(tap, joint, single,
                  "AuraFlowTransformer2DModel (joint_transformer_blocks, then single_transformer_blocks)");
  const auto& x = in.hidden_states;
  if (!x.defined() || x.dim() != 4) throw InputError("AuraFlowTransformer2DModel: hidden_states must be (B, C, H, W)");
  if (!in.timestep.defined()) throw InputError("AuraFlowTransformer2DModel: timestep (B,) is required");
  if (!in.encoder_hidden_states.defined())
    throw InputError("AuraFlowTransformer2DModel: encoder_hidden_states (B, T, joint_attention_dim) are required");
  const int64_t batch = x.size(0), p = config.patch_size;
  const int64_t grid_h = x.size(2) / p, grid_w = x.size(3) / p;

  auto h = pos_embed(x);
  const auto param_dtype = register_tokens.scalar_type();
  const auto temb = time_step_proj(dit::timestep_features(in.timestep, 256, true, 0, 1000.0).to(param_dtype));
  auto context = context_embedder(in.encoder_hidden_states);
  context = torch::cat({register_tokens.to(context.scalar_type()).expand({batch, -1, -1}), context}, 1);

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < joint; ++i) {
    auto& block = joint_blocks[static_cast<std::size_t>(i)];
    if (checkpoint) {
      // One output tensor per checkpoint: [context, x] joined along the tokens, split after.
      const int64_t text = context.size(1);
      const auto both = diffusers::checkpointed(
          [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
            const auto [c, y] = impl->forward(v[0], v[1], v[2]);
            return torch::cat({c, y}, 1);
          },
          {h, context, temb}, diffusers::trainable_parameters(*block));
      context = both.narrow(1, 0, text);
      h = both.narrow(1, text, both.size(1) - text);
    } else {
      std::tie(context, h) = block->forward(h, context, temb);
    }
    if (i == tap) out.tapped = h;
  }
  if (single > 0) {
    const int64_t text = context.size(1);
    auto combined = torch::cat({context, h}, 1);
    for (int64_t i = 0; i < single; ++i) {
      auto& block = single_blocks[static_cast<std::size_t>(i)];
      if (checkpoint) {
        combined = diffusers::checkpointed(
            [impl = block.ptr()](const std::vector<torch::Tensor>& v) { return impl->forward(v[0], v[1]); },
            {combined, temb}, diffusers::trainable_parameters(*block));
      } else {
        combined = block->forward(combined, temb);
      }
      // SimpleTuner stores the tokens after the registers and the text: the image tokens.
      if (joint + i == tap) out.tapped = combined.narrow(1, text, combined.size(1) - text);
    }
    h = combined.narrow(1, text, combined.size(1) - text);
  }

  const auto scale_shift = norm_out_linear(torch::silu(temb).to(h.scalar_type())).chunk(2, 1);
  h = proj_out(h * (1 + scale_shift[0].unsqueeze(1)) + scale_shift[1].unsqueeze(1));
  out.prediction = h.reshape({batch, grid_h, grid_w, p, p, config.out_channels})
                       .permute({0, 5, 1, 3, 2, 4})
                       .reshape({batch, config.out_channels, grid_h * p, grid_w * p});
  return out;
}

}  // namespace repa::models
