// SanaTransformer2DModel of diffusers v0.40.0 (Sana, Sana-1.5, Sana-Sprint): conv patch embedding (sin-cos positions
// only with an interpolation_scale), adaLN-single timestep embedding (plus a guidance embedding with
// guidance_embeds), caption projection + RMSNorm, blocks of ReLU linear self-attention, softmax cross-attention with
// a −10000 padding bias and the GLUMBConv feed-forward on the (h, w) token grid, optional RMS qk-norm across heads,
// a modulated output layer and the unpatchify. Children carry diffusers' names.
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

// The constructor arguments of diffusers' SanaTransformer2DModel (its config.json), defaults as there.
struct SanaTransformerConfig {
  int64_t in_channels = 32;
  int64_t out_channels = 32;  // config null or 0: in_channels
  int64_t num_attention_heads = 70;
  int64_t attention_head_dim = 32;
  int64_t num_layers = 20;
  int64_t num_cross_attention_heads = 20;
  int64_t cross_attention_head_dim = 112;
  int64_t cross_attention_dim = 2240;
  int64_t caption_channels = 2304;
  double mlp_ratio = 2.5;
  double dropout = 0.0;
  bool attention_bias = false;
  int64_t sample_size = 32;
  int64_t patch_size = 1;
  bool norm_elementwise_affine = false;
  double norm_eps = 1e-6;
  double interpolation_scale = 0.0;  // 0 (config null): no positional embedding
  bool guidance_embeds = false;
  double guidance_embeds_scale = 0.1;  // read by pipelines, not by the model
  std::string qk_norm;                 // "" (null), rms_norm_across_heads or layer_norm_across_heads
  double timestep_scale = 1.0;         // read by pipelines, not by the model

  // From diffusers' config JSON; keys the class does not take are ignored as diffusers ignores them. Values it
  // cannot run (no cross-attention, a per-head qk_norm on the linear attention) throw InputError naming the key.
  static SanaTransformerConfig from_diffusers(const nlohmann::json& config);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  void validate() const;
};

// The inputs of SanaTransformer2DModel.forward; undefined tensors are the keyword's None.
struct SanaInputs {
  torch::Tensor hidden_states;           // (B, in_channels, H, W)
  torch::Tensor encoder_hidden_states;   // (B, T, caption_channels)
  torch::Tensor timestep;                // (B,) the step (0..1000) as a float
  torch::Tensor guidance;                // (B,) exactly when guidance_embeds
  torch::Tensor encoder_attention_mask;  // (B, T) 1 keep / 0 drop, or a (B, 1, T) additive bias
  torch::Tensor attention_mask;          // accepted and unused, as in diffusers (the linear attention has no mask)
};

// SanaCombinedTimestepGuidanceEmbeddings: timestep_embedder + guidance_embedder over 256 flipped sinusoid features,
// then SiLU → linear (6·D). Returns the modulation and the embedded timestep, as AdaLayerNormSingle does.
struct SanaTimestepGuidanceEmbeddingsImpl : torch::nn::Module {
  explicit SanaTimestepGuidanceEmbeddingsImpl(int64_t embedding_dim);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& timestep, const torch::Tensor& guidance,
                                                  torch::ScalarType hidden_dtype);
  dit::TimestepEmbedding timestep_embedder{nullptr}, guidance_embedder{nullptr};
  diffusers::Linear linear{nullptr};
};
TORCH_MODULE(SanaTimestepGuidanceEmbeddings);

// A depthwise 3x3 convolution (groups = channels, padding 1) with PyTorch's Conv2d parameter names.
struct DepthwiseConv2dImpl : torch::nn::Module {
  DepthwiseConv2dImpl(int64_t channels, int64_t kernel_size);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t channels, kernel_size;
  torch::Tensor weight, bias;
};
TORCH_MODULE(DepthwiseConv2d);

// GLUMBConv on (B, C, H, W): conv_inverted (1x1 → 2·hidden) + SiLU, conv_depth (depthwise 3x3), value · SiLU(gate),
// conv_point (1x1, no bias); hidden = int(expand_ratio · C).
struct GLUMBConvImpl : torch::nn::Module {
  GLUMBConvImpl(int64_t in_channels, int64_t out_channels, double expand_ratio);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Conv2d conv_inverted{nullptr}, conv_point{nullptr};
  DepthwiseConv2d conv_depth{nullptr};
};
TORCH_MODULE(GLUMBConv);

// SanaLinearAttnProcessor2_0 over `attention`'s projections: per head, with φ = ReLU on q and k (fp32),
// out_i = Σ_j (φ(q_i)·φ(k_j)) v_j / (Σ_j φ(q_i)·φ(k_j) + 1e-15), then to_out. x (B, N, D) → (B, N, D).
torch::Tensor linear_attention(dit::AttentionImpl& attention, const torch::Tensor& x);

struct SanaTransformerBlockImpl : torch::nn::Module {
  explicit SanaTransformerBlockImpl(const SanaTransformerConfig& config);
  // x (B, h·w, D); modulation (B, 6·D); context (B, T, D); context_bias as dit::Attention.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& modulation, const torch::Tensor& context,
                        const torch::Tensor& context_bias, int64_t grid_h, int64_t grid_w);

  diffusers::LayerNorm norm1{nullptr}, norm2{nullptr};
  dit::Attention attn1{nullptr}, attn2{nullptr};
  GLUMBConv ff{nullptr};
  torch::Tensor scale_shift_table;  // (6, D)
};
TORCH_MODULE(SanaTransformerBlock);

struct SanaTransformerImpl : torch::nn::Module {
  explicit SanaTransformerImpl(const SanaTransformerConfig& config);

  // tap: crepa_block_index (0-based over transformer_blocks), −1 for none; InputError past the last block.
  DiTOutput forward(const SanaInputs& inputs, int64_t tap = -1);

  int64_t num_blocks() const { return static_cast<int64_t>(blocks.size()); }
  int64_t tap_width() const { return config.inner_dim(); }

  SanaTransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each block is rerun in backward (needs dropout 0)
  dit::PatchEmbed patch_embed{nullptr};
  dit::AdaLayerNormSingle time_embed{nullptr};                  // without guidance_embeds
  SanaTimestepGuidanceEmbeddings time_embed_guidance{nullptr};  // with guidance_embeds (named time_embed)
  dit::TextProjection caption_projection{nullptr};
  dit::RMSNorm caption_norm{nullptr};
  std::vector<SanaTransformerBlock> blocks;  // registered as transformer_blocks.N
  torch::Tensor scale_shift_table;           // (2, D)
  diffusers::LayerNorm norm_out{nullptr};    // SanaModulatedNorm's LayerNorm (norm_out.norm, no parameters)
  diffusers::Linear proj_out{nullptr};
};
TORCH_MODULE(SanaTransformer);

}  // namespace repa::models
