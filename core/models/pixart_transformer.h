// PixArtTransformer2DModel of diffusers v0.40.0 (PixArt-α / PixArt-Σ): conv patch embedding with 2-D sin-cos positions
// computed for the input's grid, adaLN-single (one timestep MLP → 6·D modulation, plus a scale_shift_table per
// block), caption projection, BasicTransformerBlocks (self-attention, cross-attention with a −10000 padding bias,
// feed-forward), a modulated output layer and the unpatchify. Children carry diffusers' names, so
// named_parameters() is the key set of a diffusers `transformer/` folder.
//
// REPA tap (SimpleTuner, tests/fixtures/TAPS.md): the hidden states (B, h·w, D) returned by
// transformer_blocks[crepa_block_index]; the caption enters by cross-attention, so every token is an image token.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/models/dit_embeddings.h"
#include "core/models/dit_layers.h"
#include "core/models/dit_output.h"

namespace repa::models {

// The constructor arguments of diffusers' PixArtTransformer2DModel (its config.json), defaults as there.
struct PixArtTransformerConfig {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 72;
  int64_t in_channels = 4;
  int64_t out_channels = 8;  // config null: in_channels
  int64_t num_layers = 28;
  double dropout = 0.0;
  int64_t cross_attention_dim = 1152;  // 0 (config null): no cross-attention
  bool attention_bias = true;
  int64_t sample_size = 128;
  int64_t patch_size = 2;
  std::string activation_fn = "gelu-approximate";
  bool upcast_attention = false;
  bool norm_elementwise_affine = false;
  double norm_eps = 1e-6;
  double interpolation_scale = 2.0;       // config null: max(sample_size / 64, 1)
  bool use_additional_conditions = true;  // config null: sample_size == 128
  int64_t caption_channels = 0;           // 0 (config null): no caption projection

  // From diffusers' config JSON. Keys the class does not take (norm_num_groups, use_linear_projection, ...) are
  // ignored as diffusers ignores them; values it cannot build (norm_type other than ada_norm_single, no
  // num_embeds_ada_norm, attention_type other than default, an unknown activation_fn) throw InputError naming the key.
  static PixArtTransformerConfig from_diffusers(const nlohmann::json& config);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  void validate() const;  // throws InputError naming the bad key
};

// The inputs of PixArtTransformer2DModel.forward; undefined tensors are the keyword's None.
struct PixArtInputs {
  torch::Tensor hidden_states;           // (B, in_channels, H, W)
  torch::Tensor encoder_hidden_states;   // (B, T, caption_channels or cross_attention_dim)
  torch::Tensor timestep;                // (B,) the DDPM step (0..num_embeds_ada_norm) as a float or integer
  torch::Tensor encoder_attention_mask;  // (B, T) 1 keep / 0 drop, or a (B, 1, T) additive bias
  torch::Tensor attention_mask;          // (B, h·w) self-attention keep-mask or (B, 1, h·w) bias
  torch::Tensor resolution;              // (B, 2) height, width in pixels (use_additional_conditions)
  torch::Tensor aspect_ratio;            // (B, 1) (use_additional_conditions)
};

// BasicTransformerBlock with norm_type ada_norm_single: norm1, attn1, (attn2), norm2, ff, scale_shift_table.
struct PixArtTransformerBlockImpl : torch::nn::Module {
  explicit PixArtTransformerBlockImpl(const PixArtTransformerConfig& config);
  // x (B, S, D); modulation (B, 6·D) from adaln_single; context (B, T, D) or undefined; biases as dit::Attention.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& modulation, const torch::Tensor& context,
                        const torch::Tensor& context_bias, const torch::Tensor& self_bias);

  diffusers::LayerNorm norm1{nullptr}, norm2{nullptr};
  dit::Attention attn1{nullptr}, attn2{nullptr};
  dit::FeedForward ff{nullptr};
  torch::Tensor scale_shift_table;  // (6, D)
};
TORCH_MODULE(PixArtTransformerBlock);

struct PixArtTransformerImpl : torch::nn::Module {
  explicit PixArtTransformerImpl(const PixArtTransformerConfig& config);

  // tap: crepa_block_index (0-based over transformer_blocks), −1 for none; InputError past the last block.
  DiTOutput forward(const PixArtInputs& inputs, int64_t tap = -1);

  int64_t num_blocks() const { return static_cast<int64_t>(blocks.size()); }
  int64_t tap_width() const { return config.inner_dim(); }

  PixArtTransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each block is rerun in backward (needs dropout 0)
  dit::PatchEmbed pos_embed{nullptr};
  std::vector<PixArtTransformerBlock> blocks;  // registered as transformer_blocks.N
  diffusers::LayerNorm norm_out{nullptr};
  torch::Tensor scale_shift_table;  // (2, D)
  diffusers::Linear proj_out{nullptr};
  dit::AdaLayerNormSingle adaln_single{nullptr};
  dit::TextProjection caption_projection{nullptr};
};
TORCH_MODULE(PixArtTransformer);

}  // namespace repa::models
