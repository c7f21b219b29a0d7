// diffusers' FluxTransformer2DModel (v0.40.0): packed 2x2 latent tokens and text embeddings, a 3-axis rotary
// embedding of the [text, image] position ids, double-stream blocks (separate weights per stream, one attention,
// RMS qk-norm) then single-stream blocks on [text, image] (parallel attention + MLP), adaLN-Continuous output.
// Timestep (+ guidance, Flux dev) + pooled CLIP conditioning. Parameter names are diffusers'. The blocks also serve
// Chroma, whose modulations come from outside (own_modulation false). The REPA tap is SimpleTuner's: one 0-based
// index over double then single blocks, image tokens only (tests/fixtures/TAPS.md).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/models/dit_layers.h"
#include "core/models/dit_output.h"
#include "core/models/mmdit_layers.h"

namespace repa::models {

struct FluxTransformerConfig {
  int64_t patch_size = 1;
  int64_t in_channels = 64;
  int64_t out_channels = 64;  // null in the config means in_channels
  int64_t num_layers = 19;
  int64_t num_single_layers = 38;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 24;
  int64_t joint_attention_dim = 4096;
  int64_t pooled_projection_dim = 768;
  bool guidance_embeds = false;
  std::vector<int64_t> axes_dims_rope = {16, 56, 56};

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  // From diffusers' config.json object (unknown and '_' keys ignored, as diffusers does); InputError naming the key.
  static FluxTransformerConfig from_json(const nlohmann::json& config);
  void validate() const;
};

// Checks what the Flux-layout models share: positive sizes, rotary axes that are even and sum to the head width.
void validate_flux_layout(const std::string& model, int64_t heads, int64_t head_dim,
                          const std::vector<int64_t>& axes_dims_rope);

// FluxTransformerBlock / ChromaTransformerBlock: norm1 / norm1_context (adaLN-Zero; Chroma's carry no weights),
// attn (joint, [text, image]), norm2 + ff and norm2_context + ff_context (tanh-GELU feed-forwards).
struct FluxDoubleBlockImpl : torch::nn::Module {
  FluxDoubleBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, bool own_modulation);
  // own_modulation: image_mod = text_mod = temb (B, D). Otherwise image_mod and text_mod are (B, 6, D) rows
  // (shift, scale, gate, shift_mlp, scale_mlp, gate_mlp). key_bias / query_keep as JointAttention. → (text, image).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  const torch::Tensor& image_mod, const torch::Tensor& text_mod,
                                                  const mmdit::Rotary& rotary, const torch::Tensor& key_bias = {},
                                                  const torch::Tensor& query_keep = {});
  bool own_modulation;
  mmdit::AdaLayerNormZero norm1{nullptr}, norm1_context{nullptr};
  mmdit::JointAttention attn{nullptr};
  dit::FeedForward ff{nullptr}, ff_context{nullptr};
};
TORCH_MODULE(FluxDoubleBlock);

// FluxSingleTransformerBlock / ChromaSingleTransformerBlock on the joint sequence: norm (adaLN-Zero single),
// proj_mlp (4·D, tanh-GELU) beside attn (self-attention, RMS qk-norm, no output projection), proj_out over both.
struct FluxSingleBlockImpl : torch::nn::Module {
  FluxSingleBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, bool own_modulation);
  // hidden (B, T + N, D); mod = temb (B, D) with own_modulation, else (B, 3, D) rows (shift, scale, gate).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mod, const mmdit::Rotary& rotary,
                        const torch::Tensor& key_bias = {}, const torch::Tensor& query_keep = {});
  bool own_modulation;
  mmdit::AdaLayerNormZero norm{nullptr};
  diffusers::Linear proj_mlp{nullptr}, proj_out{nullptr};
  mmdit::JointAttention attn{nullptr};
};
TORCH_MODULE(FluxSingleBlock);

// The blocks' forward, or with `checkpoint` the same under gradient checkpointing (rerun in backward).
std::pair<torch::Tensor, torch::Tensor> run_double_block(FluxDoubleBlock& block, bool checkpoint,
                                                         const torch::Tensor& x, const torch::Tensor& context,
                                                         const torch::Tensor& image_mod, const torch::Tensor& text_mod,
                                                         const mmdit::Rotary& rotary,
                                                         const torch::Tensor& key_bias = {},
                                                         const torch::Tensor& query_keep = {});
torch::Tensor run_single_block(FluxSingleBlock& block, bool checkpoint, const torch::Tensor& hidden,
                               const torch::Tensor& mod, const mmdit::Rotary& rotary,
                               const torch::Tensor& key_bias = {}, const torch::Tensor& query_keep = {});

// img_ids / txt_ids (N, axes) or the deprecated (1, N, axes) form diffusers also takes → (S, axes) [text, image].
torch::Tensor joint_position_ids(const torch::Tensor& txt_ids, const torch::Tensor& img_ids, int64_t axes,
                                 const std::string& model);

struct FluxTransformerImpl : torch::nn::Module {
  explicit FluxTransformerImpl(const FluxTransformerConfig& config);

  // hidden_states (B, N, in_channels) packed latents; encoder_hidden_states (B, T, joint_attention_dim);
  // pooled_projections (B, pooled_projection_dim); timestep (B,) in [0, 1] (scaled by 1000 inside); img_ids (N, 3),
  // txt_ids (T, 3); guidance (B,) exactly when guidance_embeds. tap: crepa_block_index over double then single
  // blocks (−1 none) → `tapped` (B, N, D) image tokens. prediction (B, N, patch² · out_channels), still packed.
  // attention_mask (B, T + N) keep mask (SimpleTuner's flux_attention_masked_training) or undefined: none.
  DiTOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                    const torch::Tensor& pooled_projections, const torch::Tensor& timestep,
                    const torch::Tensor& img_ids, const torch::Tensor& txt_ids, const torch::Tensor& guidance = {},
                    int64_t tap = -1, const torch::Tensor& attention_mask = {});

  int64_t num_double_blocks() const { return config.num_layers; }
  int64_t num_single_blocks() const { return config.num_single_layers; }
  // A diffusers folder, a .safetensors file / index under diffusers' names, or a Black Forest Labs single file
  // (flux1-dev.safetensors: its names are mapped, flux_official_names.h). Named errors for every mismatch.
  void load_weights(const std::string& path);

  FluxTransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each block is rerun in backward
  mmdit::TimestepTextEmbeddings time_text_embed{nullptr};
  diffusers::Linear context_embedder{nullptr}, x_embedder{nullptr}, proj_out{nullptr};
  std::vector<FluxDoubleBlock> transformer_blocks;
  std::vector<FluxSingleBlock> single_transformer_blocks;
  mmdit::AdaLayerNormContinuous norm_out{nullptr};
};
TORCH_MODULE(FluxTransformer);

}  // namespace repa::models
