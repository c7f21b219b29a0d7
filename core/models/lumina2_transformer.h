// Lumina2Transformer2DModel of diffusers v0.40.0 (Lumina-Image 2.0): a sinusoid timestep MLP and an RMSNorm + Linear
// caption embedder; 2x2 patches flattened (p_h, p_w, C) through a Linear; 3-axis complex rotary positions (caption
// index on axis 0, every image token at the caption length on axis 0 and its (row, col) on axes 1-2); context refiner
// blocks on the caption alone (key-masked, unmodulated), noise refiner blocks on the image alone (modulated); then the
// joint blocks `layers` on the per-sample sequence [caption_b, image, zero padding] with grouped-query attention,
// sandwich RMSNorms, tanh-gated RMS adaLN and a SwiGLU feed-forward; LuminaLayerNormContinuous and the unpatchify.
// Children carry diffusers' names.
//
// REPA tap (SimpleTuner, tests/fixtures/TAPS.md): `layers` only (the refiners are not counted), 0-based; the whole
// joint sequence after layers[i], (B, max_b(L_b + h·w), D), caption and padding rows kept as SimpleTuner keeps them.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/models/diffusers_layers.h"
#include "core/models/dit_embeddings.h"
#include "core/models/dit_layers.h"
#include "core/models/dit_output.h"

namespace repa::models {

// The constructor arguments of diffusers' Lumina2Transformer2DModel (its config.json), defaults as there.
struct Lumina2TransformerConfig {
  int64_t sample_size = 128;
  int64_t patch_size = 2;
  int64_t in_channels = 16;
  int64_t out_channels = 16;  // config null: in_channels
  int64_t hidden_size = 2304;
  int64_t num_layers = 26;
  int64_t num_refiner_layers = 2;
  int64_t num_attention_heads = 24;
  int64_t num_kv_heads = 8;
  int64_t multiple_of = 256;
  std::optional<double> ffn_dim_multiplier;
  double norm_eps = 1e-5;
  double scaling_factor = 1.0;
  std::vector<int64_t> axes_dim_rope = {32, 32, 32};
  std::vector<int64_t> axes_lens = {300, 512, 512};
  int64_t cap_feat_dim = 1024;

  static Lumina2TransformerConfig from_diffusers(const nlohmann::json& config);
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t temb_dim() const { return std::min<int64_t>(hidden_size, 1024); }
  void validate() const;  // throws InputError naming the bad key
};

struct Lumina2Inputs {
  torch::Tensor hidden_states;           // (B, in_channels, H, W)
  torch::Tensor timestep;                // (B,) in [0, 1], fed to the sinusoid unscaled
  torch::Tensor encoder_hidden_states;   // (B, T, cap_feat_dim)
  torch::Tensor encoder_attention_mask;  // (B, T) 1 = token, 0 = padding, a prefix of ones per sample
};

// Per-sample complex rotary factors cos + i·sin of shape (B, S, head_dim / 2), fp64; rows with cos = sin = 0 (the
// caption padding of the context refiner) zero their queries and keys, as diffusers' zero freqs_cis do.
struct Lumina2Rotary {
  torch::Tensor cos, sin;
};

// (B, S, H, Dh) with interleaved (real, imaginary) pairs multiplied by the factors; computed in fp64 as diffusers'
// complex64 × complex128 product is, returned in x's dtype.
torch::Tensor lumina2_apply_rotary(const torch::Tensor& x, const Lumina2Rotary& rotary);

// LuminaFeedForward: linear_2(silu_fp32(linear_1(x)) · linear_3(x)), bias-free, hidden 4·dim (× ffn_dim_multiplier)
// rounded up to multiple_of.
struct Lumina2FeedForwardImpl : torch::nn::Module {
  Lumina2FeedForwardImpl(int64_t dim, int64_t multiple_of, std::optional<double> ffn_dim_multiplier);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Linear linear_1{nullptr}, linear_2{nullptr}, linear_3{nullptr};
};
TORCH_MODULE(Lumina2FeedForward);

// Lumina2TransformerBlock. modulated: norm1 is LuminaRMSNormZero (norm1.linear from SiLU(temb) → scale_msa, gate_msa,
// scale_mlp, gate_mlp; norm1.norm); otherwise norm1 is a plain RMSNorm and temb is not read.
struct Lumina2BlockImpl : torch::nn::Module {
  Lumina2BlockImpl(const Lumina2TransformerConfig& config, bool modulated);
  // key_bias: (B, 1, S) additive bias over keys, or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_bias, const Lumina2Rotary& rotary,
                        const torch::Tensor& temb);
  torch::Tensor attention(const torch::Tensor& x, const torch::Tensor& key_bias, const Lumina2Rotary& rotary);

  bool modulated;
  int64_t heads, kv_heads;
  dit::Attention attn{nullptr};
  Lumina2FeedForward feed_forward{nullptr};
  diffusers::Linear norm1_linear{nullptr};  // modulated: norm1.linear
  dit::RMSNorm norm1{nullptr};              // modulated: norm1.norm; otherwise norm1
  dit::RMSNorm ffn_norm1{nullptr}, norm2{nullptr}, ffn_norm2{nullptr};
};
TORCH_MODULE(Lumina2Block);

struct Lumina2TransformerImpl : torch::nn::Module {
  explicit Lumina2TransformerImpl(const Lumina2TransformerConfig& config);

  // tap: crepa_block_index over `layers`, −1 for none; InputError past the last layer.
  DiTOutput forward(const Lumina2Inputs& inputs, int64_t tap = -1);

  int64_t tap_width() const { return config.hidden_size; }

  Lumina2TransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each joint layer is rerun in backward
  diffusers::Linear x_embedder{nullptr};
  dit::TimestepEmbedding timestep_embedder{nullptr};  // time_caption_embed.timestep_embedder
  dit::RMSNorm caption_norm{nullptr};                 // time_caption_embed.caption_embedder.0
  diffusers::Linear caption_linear{nullptr};          // time_caption_embed.caption_embedder.1
  std::vector<Lumina2Block> noise_refiner, context_refiner, layers;
  diffusers::Linear norm_out_linear_1{nullptr}, norm_out_linear_2{nullptr};  // LuminaLayerNormContinuous
};
TORCH_MODULE(Lumina2Transformer);

}  // namespace repa::models
