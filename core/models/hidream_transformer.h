// HiDreamImageTransformer2DModel of diffusers v0.40.0 (HiDream-I1): 2x2 patches flattened (p_h, p_w, C) through a
// Linear, sinusoid timestep MLP plus a pooled-text MLP, bias-free caption projections of the T5 states and of one Llama
// layer per block, 3-axis real rotary on ids (0, row, col) for the image and zeros for text; double-stream blocks on
// [image | T5, last Llama layer, this block's Llama layer], then single-stream blocks on [image, T5, last Llama, this
// block's Llama layer] (the per-block Llama tokens are dropped after each block). Attention has RMS qk-norm across
// heads; the image feed-forwards are mixture-of-experts (softmax gate, top-k routed SwiGLU experts weighted without
// renormalisation, plus a shared expert). Children carry diffusers' names (blocks under `<list>.N.block`).
//
// Latents that are not square are padded to max_resolution's token count with a key mask, as diffusers does.
// The output is always (B, C, H, W); diffusers' training mode returns the same values as (B, C, h·w, p·p) rows.
//
// REPA tap: one numbering, double-stream blocks first. Double block i: the image tokens it returns (B, N, D), as
// SimpleTuner stores them (N = h·w; padded non-square latents keep their max_seq rows). Single block i: the image
// tokens of the joint sequence (B, N, D). SimpleTuner stores the TEXT tokens there (it cuts `[:, image_len:]` from an
// image-first sequence): that is a SimpleTuner bug; this tap takes the image and `simpletuner_tap_difference` says so
// (logged once per model).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/models/diffusers_layers.h"
#include "core/models/dit_embeddings.h"
#include "core/models/dit_layers.h"
#include "core/models/dit_output.h"

namespace repa::models {

// The constructor arguments of diffusers' HiDreamImageTransformer2DModel (its config.json), defaults as there;
// patch_size, caption_channels and llama_layers have no usable default and must be given.
struct HiDreamTransformerConfig {
  int64_t patch_size = 2;
  int64_t in_channels = 64;
  int64_t out_channels = 64;  // config null: in_channels
  int64_t num_layers = 16;
  int64_t num_single_layers = 32;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 20;
  std::vector<int64_t> caption_channels;  // [T5 width, Llama width]
  int64_t text_emb_dim = 2048;
  int64_t num_routed_experts = 4;
  int64_t num_activated_experts = 2;
  std::vector<int64_t> axes_dims_rope = {32, 32};
  std::vector<int64_t> max_resolution = {128, 128};
  std::vector<int64_t> llama_layers;  // one Llama hidden-state index per block

  static HiDreamTransformerConfig from_diffusers(const nlohmann::json& config);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t max_seq() const { return max_resolution[0] * max_resolution[1] / (patch_size * patch_size); }
  void validate() const;  // throws InputError naming the bad key
};

struct HiDreamInputs {
  torch::Tensor hidden_states;                 // (B, in_channels, H, W)
  torch::Tensor timesteps;                     // (B,) on the 0..1000 scale
  torch::Tensor encoder_hidden_states_t5;      // (B, T5, caption_channels[0])
  torch::Tensor encoder_hidden_states_llama3;  // (layers, B, TL, caption_channels[1]); llama_layers index dim 0
  torch::Tensor pooled_embeds;                 // (B, text_emb_dim)
};

// HiDreamImageFeedForwardSwiGLU: w2(silu(w1(x)) · w3(x)), bias-free, hidden int(2·hidden_dim/3) rounded up to 256.
struct HiDreamFeedForwardImpl : torch::nn::Module {
  HiDreamFeedForwardImpl(int64_t dim, int64_t hidden_dim);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Linear w1{nullptr}, w2{nullptr}, w3{nullptr};
};
TORCH_MODULE(HiDreamFeedForward);

// MOEFeedForwardSwiGLU: gate.weight (E, dim) scores each token with a softmax; the top `activated` experts' outputs
// are summed with their scores as weights (not renormalised), plus shared_experts (hidden_dim / 2).
struct HiDreamMoEFeedForwardImpl : torch::nn::Module {
  HiDreamMoEFeedForwardImpl(int64_t dim, int64_t hidden_dim, int64_t routed, int64_t activated);
  torch::Tensor forward(const torch::Tensor& x);
  // The routing: (top-k expert indices (N, k), their softmax weights (N, k)) of the flattened tokens.
  std::pair<torch::Tensor, torch::Tensor> route(const torch::Tensor& tokens) const;
  int64_t activated;
  HiDreamFeedForward shared_experts{nullptr};
  std::vector<HiDreamFeedForward> experts;
  torch::Tensor gate_weight;  // gate.weight
};
TORCH_MODULE(HiDreamMoEFeedForward);

// HiDreamAttention: to_q/to_k/to_v/to_out (with bias) and q_rms_norm/k_rms_norm across heads on the image stream; the
// double-stream form adds the same with a `_t` suffix for the text stream.
struct HiDreamAttentionImpl : torch::nn::Module {
  HiDreamAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head, bool single);
  // x (B, N, D) image (or the whole single-stream sequence); context (B, T, D) text, double-stream only; key_keep
  // (B, N) multiplies the image keys (undefined: none); cos / sin (N + T, rope width) the rotary table.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  const torch::Tensor& key_keep, const torch::Tensor& cos,
                                                  const torch::Tensor& sin);
  int64_t heads, dim_head;
  bool single;
  diffusers::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  diffusers::Linear to_q_t{nullptr}, to_k_t{nullptr}, to_v_t{nullptr}, to_out_t{nullptr};
  dit::RMSNorm q_rms_norm{nullptr}, k_rms_norm{nullptr}, q_rms_norm_t{nullptr}, k_rms_norm_t{nullptr};
};
TORCH_MODULE(HiDreamAttention);

// HiDreamImageTransformerBlock (double) and HiDreamImageSingleTransformerBlock (single): adaLN_modulation.1 (12 or 6
// vectors: shift, scale, gate for attention then feed-forward, image first), non-affine LayerNorms (eps 1e-6).
struct HiDreamBlockImpl : torch::nn::Module {
  HiDreamBlockImpl(const HiDreamTransformerConfig& config, bool single);
  // Double: returns (image, text); single: (sequence, undefined).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  const torch::Tensor& key_keep, const torch::Tensor& temb,
                                                  const torch::Tensor& cos, const torch::Tensor& sin);
  bool single;
  diffusers::Linear adaLN_linear{nullptr};  // adaLN_modulation.1
  HiDreamAttention attn1{nullptr};
  HiDreamMoEFeedForward ff_i_moe{nullptr};  // ff_i with routed experts
  HiDreamFeedForward ff_i{nullptr};         // ff_i when num_routed_experts is 0
  HiDreamFeedForward ff_t{nullptr};         // double only

 private:
  torch::Tensor image_feed_forward(const torch::Tensor& x);
};
TORCH_MODULE(HiDreamBlock);

struct HiDreamTransformerImpl : torch::nn::Module {
  explicit HiDreamTransformerImpl(const HiDreamTransformerConfig& config);

  // tap: crepa_block_index over double then single blocks, −1 for none; InputError past the last block.
  DiTOutput forward(const HiDreamInputs& inputs, int64_t tap = -1);

  int64_t tap_width() const { return config.inner_dim(); }
  // Empty when SimpleTuner taps the same tensor at `tap`; otherwise what it takes instead and what this model does.
  std::string simpletuner_tap_difference(int64_t tap) const;

  HiDreamTransformerConfig config;
  bool gradient_checkpointing = false;                              // in training, each block is rerun in backward
  diffusers::Linear x_embedder{nullptr};                            // x_embedder.proj
  dit::TimestepEmbedding t_embedder{nullptr}, p_embedder{nullptr};  // .timestep_embedder / .pooled_embedder
  std::vector<HiDreamBlock> double_blocks, single_blocks;           // double_stream_blocks.N.block, single_...
  std::vector<diffusers::Linear> caption_projection;                // caption_projection.N.linear; last: T5
  diffusers::Linear final_adaLN{nullptr}, final_linear{nullptr};    // final_layer.adaLN_modulation.1 / .linear

 private:
  bool warned_tap_ = false;
};
TORCH_MODULE(HiDreamTransformer);

}  // namespace repa::models
