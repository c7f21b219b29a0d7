// diffusers' SD3Transformer2DModel (v0.40.0): the MMDiT of Stable Diffusion 3 / 3.5 — conv patch embedding plus a
// centre crop of the stored sin-cos table, timestep + pooled-text conditioning, joint blocks (separate image and
// text weights, one attention over both; SD3.5's dual attention and RMS qk-norm), adaLN-Continuous output and
// unpatchify. Parameter names are diffusers', so a diffusers folder loads as is. The REPA tap is SimpleTuner's:
// the image stream after joint block `tap` (tests/fixtures/TAPS.md).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/models/dit_embeddings.h"
#include "core/models/dit_layers.h"
#include "core/models/dit_output.h"
#include "core/models/mmdit_layers.h"

namespace repa::models {

struct SD3TransformerConfig {
  int64_t sample_size = 128;
  int64_t patch_size = 2;
  int64_t in_channels = 16;
  int64_t num_layers = 18;
  int64_t attention_head_dim = 64;
  int64_t num_attention_heads = 18;
  int64_t joint_attention_dim = 4096;
  int64_t caption_projection_dim = 1152;
  int64_t pooled_projection_dim = 2048;
  int64_t out_channels = 16;
  int64_t pos_embed_max_size = 96;             // 0 (null): positions computed for the grid on the fly
  std::vector<int64_t> dual_attention_layers;  // blocks with SD3.5's second self-attention (attn2)
  std::string qk_norm;                         // "" (null), rms_norm, layer_norm or fp32_layer_norm

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  // From diffusers' config.json object (keys starting with '_' and unknown keys are ignored, as diffusers does);
  // InputError naming the key for wrong types or values.
  static SD3TransformerConfig from_json(const nlohmann::json& config);
  void validate() const;
};

// JointTransformerBlock: norm1 (adaLN-Zero, 9 chunks with dual attention), norm1_context (adaLN-Zero, or
// adaLN-Continuous in the last, context_pre_only block), attn (+ attn2), norm2/ff and norm2_context/ff_context.
struct SD3JointBlockImpl : torch::nn::Module {
  SD3JointBlockImpl(const SD3TransformerConfig& config, bool context_pre_only, bool dual_attention);
  // Returns (text stream or undefined after a context_pre_only block, image stream).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  const torch::Tensor& temb);

  bool context_pre_only, dual_attention;
  mmdit::AdaLayerNormZero norm1{nullptr}, norm1_context_zero{nullptr};
  mmdit::AdaLayerNormContinuous norm1_context_continuous{nullptr};
  mmdit::JointAttention attn{nullptr};
  dit::Attention attn2{nullptr};
  dit::FeedForward ff{nullptr}, ff_context{nullptr};
};
TORCH_MODULE(SD3JointBlock);

struct SD3TransformerImpl : torch::nn::Module {
  explicit SD3TransformerImpl(const SD3TransformerConfig& config);

  // hidden_states (B, in_channels, H, W) latents; encoder_hidden_states (B, T, joint_attention_dim);
  // pooled_projections (B, pooled_projection_dim); timestep (B,) on the 0..1000 scale. tap: crepa_block_index
  // (0-based joint block, −1 none) → `tapped` (B, H/p · W/p, D). prediction (B, out_channels, H, W).
  DiTOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                    const torch::Tensor& pooled_projections, const torch::Tensor& timestep, int64_t tap = -1);

  int64_t num_double_blocks() const { return config.num_layers; }
  int64_t num_single_blocks() const { return 0; }
  // A diffusers folder (config.json beside the weights), one .safetensors / .safetensors.index.json file under
  // diffusers' names, or an official single file (joint_blocks.*, sd3_official_names.h); missing, unexpected and
  // mis-shaped tensors are named in one InputError.
  void load_weights(const std::string& path);

  SD3TransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each joint block is rerun in backward
  dit::PatchEmbed pos_embed{nullptr};
  mmdit::TimestepTextEmbeddings time_text_embed{nullptr};
  diffusers::Linear context_embedder{nullptr}, proj_out{nullptr};
  std::vector<SD3JointBlock> transformer_blocks;
  mmdit::AdaLayerNormContinuous norm_out{nullptr};
};
TORCH_MODULE(SD3Transformer);

}  // namespace repa::models
