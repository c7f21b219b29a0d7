// AuraFlowTransformer2DModel of diffusers v0.40.0: 2x2 patches through a Linear plus a learned position table (its
// centred window), timestep (× 1000) MLP, bias-free text projection prefixed by 8 learned register tokens, MMDiT
// joint blocks then single DiT blocks on [registers, text, image] (bias-free attention with fp32 LayerNorm
// qk-norm, fp32 non-affine LayerNorms, SwiGLU feed-forwards), AuraFlowPreFinalBlock and a bias-free proj_out.
// Children carry diffusers' names.
//
// REPA tap (SimpleTuner, tests/fixtures/TAPS.md): one numbering, joint blocks first. For i < num_mmdit_layers the
// image stream after joint_transformer_blocks[i]; later, the sequence after single_transformer_blocks[i −
// num_mmdit_layers] with the registers and text cut off: image tokens only, (B, h·w, D) in raster order.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/models/diffusers_layers.h"
#include "core/models/dit_embeddings.h"
#include "core/models/dit_output.h"
#include "core/models/mmdit_layers.h"

namespace repa::models {

// The constructor arguments of diffusers' AuraFlowTransformer2DModel (its config.json), defaults as there.
struct AuraFlowTransformerConfig {
  int64_t sample_size = 64;
  int64_t patch_size = 2;
  int64_t in_channels = 4;
  int64_t num_mmdit_layers = 4;
  int64_t num_single_dit_layers = 32;
  int64_t attention_head_dim = 256;
  int64_t num_attention_heads = 12;
  int64_t joint_attention_dim = 2048;
  int64_t caption_projection_dim = 3072;
  int64_t out_channels = 4;  // config null: in_channels
  int64_t pos_embed_max_size = 1024;

  static AuraFlowTransformerConfig from_diffusers(const nlohmann::json& config);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  void validate() const;  // throws InputError naming the bad key
};

struct AuraFlowInputs {
  torch::Tensor hidden_states;          // (B, in_channels, H, W)
  torch::Tensor encoder_hidden_states;  // (B, T, joint_attention_dim)
  torch::Tensor timestep;               // (B,) in [0, 1] (the sinusoid scales it by 1000)
};

// AuraFlowPatchEmbed: (C, p, p)-ordered patches → proj (Linear), plus pos_embed (1, max, D) viewed as a square
// √max × √max grid whose centred h × w window is added.
struct AuraFlowPatchEmbedImpl : torch::nn::Module {
  AuraFlowPatchEmbedImpl(int64_t patch_size, int64_t in_channels, int64_t embed_dim, int64_t pos_embed_max_size);
  torch::Tensor forward(const torch::Tensor& latent);
  torch::Tensor position_indices(int64_t grid_h, int64_t grid_w) const;  // InputError when the grid does not fit
  int64_t patch_size, in_channels, pos_embed_max_size;
  diffusers::Linear proj{nullptr};
  torch::Tensor pos_embed;
};
TORCH_MODULE(AuraFlowPatchEmbed);

// AuraFlowFeedForward: out_projection(silu(linear_1(x)) · linear_2(x)), bias-free, hidden int(2·4·D/3) rounded up
// to a multiple of 256.
struct AuraFlowFeedForwardImpl : torch::nn::Module {
  explicit AuraFlowFeedForwardImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Linear linear_1{nullptr}, linear_2{nullptr}, out_projection{nullptr};
};
TORCH_MODULE(AuraFlowFeedForward);

// Attention with AuraFlowAttnProcessor2_0: bias-free to_q/to_k/to_v/to_out.0 with fp32 LayerNorm qk-norm per head
// (no parameters); joint, also add_q_proj/add_k_proj/add_v_proj/to_add_out on the text stream, attending over
// [text, image].
struct AuraFlowAttentionImpl : torch::nn::Module {
  AuraFlowAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head, bool joint);
  // Returns (image out, text out); text out is undefined without context.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context = {});
  int64_t heads, dim_head;
  diffusers::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  diffusers::Linear add_q_proj{nullptr}, add_k_proj{nullptr}, add_v_proj{nullptr}, to_add_out{nullptr};
};
TORCH_MODULE(AuraFlowAttention);

struct AuraFlowJointBlockImpl : torch::nn::Module {
  AuraFlowJointBlockImpl(int64_t dim, int64_t heads, int64_t dim_head);
  // Returns (context, x) after the block, as diffusers' block does.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  const torch::Tensor& temb);
  mmdit::AdaLayerNormZero norm1{nullptr}, norm1_context{nullptr};
  AuraFlowAttention attn{nullptr};
  AuraFlowFeedForward ff{nullptr}, ff_context{nullptr};
};
TORCH_MODULE(AuraFlowJointBlock);

struct AuraFlowSingleBlockImpl : torch::nn::Module {
  AuraFlowSingleBlockImpl(int64_t dim, int64_t heads, int64_t dim_head);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb);
  mmdit::AdaLayerNormZero norm1{nullptr};
  AuraFlowAttention attn{nullptr};
  AuraFlowFeedForward ff{nullptr};
};
TORCH_MODULE(AuraFlowSingleBlock);

struct AuraFlowTransformerImpl : torch::nn::Module {
  explicit AuraFlowTransformerImpl(const AuraFlowTransformerConfig& config);

  // tap: crepa_block_index over joint then single blocks, −1 for none; InputError past the last block.
  DiTOutput forward(const AuraFlowInputs& inputs, int64_t tap = -1);

  int64_t tap_width() const { return config.inner_dim(); }

  AuraFlowTransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each block is rerun in backward
  AuraFlowPatchEmbed pos_embed{nullptr};
  diffusers::Linear context_embedder{nullptr};
  dit::TimestepEmbedding time_step_proj{nullptr};
  std::vector<AuraFlowJointBlock> joint_blocks;    // registered as joint_transformer_blocks.N
  std::vector<AuraFlowSingleBlock> single_blocks;  // registered as single_transformer_blocks.N
  diffusers::Linear norm_out_linear{nullptr};      // AuraFlowPreFinalBlock's norm_out.linear
  diffusers::Linear proj_out{nullptr};
  torch::Tensor register_tokens;  // (1, 8, D)
};
TORCH_MODULE(AuraFlowTransformer);

}  // namespace repa::models
