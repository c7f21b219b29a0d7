// diffusers' Flux2Transformer2DModel (v0.40.0): Flux.2's transformer — bias-free linears, one shared modulation per
// stream type (double-block image, double-block text, single block) from the timestep (+ guidance) embedding, a
// 4-axis rotary embedding (t, h, w, l) with theta rope_theta, SwiGLU feed-forwards, and single blocks whose QKV and
// MLP input projections are one fused linear (to_qkv_mlp_proj) as are their outputs (to_out). Parameter names are
// diffusers'. The REPA tap is Flux's: double blocks first, image tokens only (tests/fixtures/TAPS.md).
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

struct Flux2TransformerConfig {
  int64_t patch_size = 1;
  int64_t in_channels = 128;
  int64_t out_channels = 128;  // null in the config means in_channels
  int64_t num_layers = 8;
  int64_t num_single_layers = 48;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 48;
  int64_t joint_attention_dim = 15360;
  int64_t timestep_guidance_channels = 256;
  double mlp_ratio = 3.0;
  std::vector<int64_t> axes_dims_rope = {32, 32, 32, 32};
  double rope_theta = 2000;
  double eps = 1e-6;
  bool guidance_embeds = true;

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t mlp_hidden_dim() const { return static_cast<int64_t>(static_cast<double>(inner_dim()) * mlp_ratio); }
  static Flux2TransformerConfig from_json(const nlohmann::json& config);  // InputError naming the key
  void validate() const;
};

// Flux2FeedForward: linear_in (D → 2·inner) → SiLU(first half) · second half → linear_out, no biases.
struct Flux2FeedForwardImpl : torch::nn::Module {
  Flux2FeedForwardImpl(int64_t dim, int64_t inner_dim);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Linear linear_in{nullptr}, linear_out{nullptr};
};
TORCH_MODULE(Flux2FeedForward);

// Flux2TransformerBlock: non-affine norms (eps), joint attention over [text, image], SwiGLU ff / ff_context.
struct Flux2DoubleBlockImpl : torch::nn::Module {
  explicit Flux2DoubleBlockImpl(const Flux2TransformerConfig& config);
  // image_mod / text_mod (B, 6·D): the shared modulations of the double blocks. → (text, image).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  const torch::Tensor& image_mod, const torch::Tensor& text_mod,
                                                  const mmdit::Rotary& rotary);
  double eps;
  mmdit::JointAttention attn{nullptr};
  Flux2FeedForward ff{nullptr}, ff_context{nullptr};
};
TORCH_MODULE(Flux2DoubleBlock);

// Flux2ParallelSelfAttention: to_qkv_mlp_proj (D → 3·inner + 2·mlp), per-head RMS norm_q/norm_k, rotary attention
// beside the SwiGLU MLP, to_out (inner + mlp → D), no biases.
struct Flux2ParallelSelfAttentionImpl : torch::nn::Module {
  explicit Flux2ParallelSelfAttentionImpl(const Flux2TransformerConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const mmdit::Rotary& rotary);
  int64_t heads, head_dim, mlp_hidden;
  diffusers::Linear to_qkv_mlp_proj{nullptr}, to_out{nullptr};
  dit::RMSNorm norm_q{nullptr}, norm_k{nullptr};
};
TORCH_MODULE(Flux2ParallelSelfAttention);

// Flux2SingleTransformerBlock on the joint sequence: x + gate · attn(norm(x) · (1 + scale) + shift).
struct Flux2SingleBlockImpl : torch::nn::Module {
  explicit Flux2SingleBlockImpl(const Flux2TransformerConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mod, const mmdit::Rotary& rotary);
  double eps;
  Flux2ParallelSelfAttention attn{nullptr};
};
TORCH_MODULE(Flux2SingleBlock);

struct Flux2TransformerImpl : torch::nn::Module {
  explicit Flux2TransformerImpl(const Flux2TransformerConfig& config);

  // hidden_states (B, N, in_channels) packed, patchified latent tokens; encoder_hidden_states (B, T,
  // joint_attention_dim); timestep (B,) in [0, 1] and guidance (B,) (both scaled by 1000 inside; guidance is
  // ignored without a guidance embedder and optional with one, as in diffusers); img_ids (N, 4), txt_ids (T, 4).
  // tap as Flux → `tapped` (B, N, D). prediction (B, N, patch² · out_channels).
  DiTOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                    const torch::Tensor& timestep, const torch::Tensor& img_ids, const torch::Tensor& txt_ids,
                    const torch::Tensor& guidance = {}, int64_t tap = -1);

  int64_t num_double_blocks() const { return config.num_layers; }
  int64_t num_single_blocks() const { return config.num_single_layers; }
  // A diffusers folder, a .safetensors file / index under diffusers' names, or a Black Forest Labs Flux.2 single file
  // (flux_official_names.h). Named errors for every mismatch.
  void load_weights(const std::string& path);

  Flux2TransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each block is rerun in backward
  dit::TimestepEmbedding timestep_embedder{nullptr}, guidance_embedder{nullptr};  // under time_guidance_embed
  diffusers::Linear double_stream_modulation_img{nullptr}, double_stream_modulation_txt{nullptr};  // their .linear
  diffusers::Linear single_stream_modulation{nullptr};
  diffusers::Linear x_embedder{nullptr}, context_embedder{nullptr}, proj_out{nullptr};
  std::vector<Flux2DoubleBlock> transformer_blocks;
  std::vector<Flux2SingleBlock> single_transformer_blocks;
  mmdit::AdaLayerNormContinuous norm_out{nullptr};
};
TORCH_MODULE(Flux2Transformer);

}  // namespace repa::models
