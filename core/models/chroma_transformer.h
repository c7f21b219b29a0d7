// diffusers' ChromaTransformer2DModel (v0.40.0): the Flux layout without pooled text or guidance input, where every
// block's modulation comes from the distilled-guidance approximator — an MLP over [sinusoid(t), sinusoid(0),
// sinusoid of the modulation index] for 3·single + 12·double + 2 slots — and a text padding mask applies to queries
// and keys. Parameter names are diffusers'. The REPA tap is Flux's (tests/fixtures/TAPS.md).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/models/dit_layers.h"
#include "core/models/dit_output.h"
#include "core/models/flux_transformer.h"

namespace repa::models {

struct ChromaTransformerConfig {
  int64_t patch_size = 1;
  int64_t in_channels = 64;
  int64_t out_channels = 64;  // null in the config means in_channels
  int64_t num_layers = 19;
  int64_t num_single_layers = 38;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 24;
  int64_t joint_attention_dim = 4096;
  std::vector<int64_t> axes_dims_rope = {16, 56, 56};
  int64_t approximator_num_channels = 64;
  int64_t approximator_hidden_dim = 5120;
  int64_t approximator_layers = 5;

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  // 3 per single block, 6 image + 6 text per double block, 2 for the output norm.
  int64_t modulation_slots() const { return 3 * num_single_layers + 12 * num_layers + 2; }
  static ChromaTransformerConfig from_json(const nlohmann::json& config);  // InputError naming the key
  void validate() const;
};

// ChromaApproximator: in_proj, approximator_layers residual steps x + layers.i(norms.i(x)) (RMSNorm, then
// Linear-SiLU-Linear), out_proj.
struct ChromaApproximatorImpl : torch::nn::Module {
  ChromaApproximatorImpl(int64_t in_dim, int64_t out_dim, int64_t hidden_dim, int64_t layers);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Linear in_proj{nullptr}, out_proj{nullptr};
  std::vector<dit::TextProjection> layers;
  std::vector<dit::RMSNorm> norms;
};
TORCH_MODULE(ChromaApproximator);

struct ChromaTransformerImpl : torch::nn::Module {
  explicit ChromaTransformerImpl(const ChromaTransformerConfig& config);

  // The approximator's input (B, slots, approximator_num_channels) for timesteps already on the 0..1000 scale.
  torch::Tensor modulation_input(const torch::Tensor& timestep) const;

  // hidden_states (B, N, in_channels) packed latents; encoder_hidden_states (B, T, joint_attention_dim); timestep
  // (B,) in [0, 1] (scaled by 1000 inside); img_ids (N, 3), txt_ids (T, 3); attention_mask (B, T + N) keep mask
  // (bool or 0/1) or undefined. tap as Flux → `tapped` (B, N, D). prediction (B, N, patch² · out_channels).
  DiTOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                    const torch::Tensor& timestep, const torch::Tensor& img_ids, const torch::Tensor& txt_ids,
                    const torch::Tensor& attention_mask = {}, int64_t tap = -1);

  int64_t num_double_blocks() const { return config.num_layers; }
  int64_t num_single_blocks() const { return config.num_single_layers; }
  // A diffusers folder, a .safetensors file / index under diffusers' names, or an official Chroma single file
  // (Flux block names, flux_official_names.h). Named errors for every mismatch.
  void load_weights(const std::string& path);

  ChromaTransformerConfig config;
  bool gradient_checkpointing = false;  // in training, each block is rerun in backward (the mask included)
  torch::Tensor mod_proj;  // sinusoids of the modulation indices: diffusers' non-persistent buffer, not a weight
  ChromaApproximator distilled_guidance_layer{nullptr};
  diffusers::Linear context_embedder{nullptr}, x_embedder{nullptr}, proj_out{nullptr};
  std::vector<FluxDoubleBlock> transformer_blocks;
  std::vector<FluxSingleBlock> single_transformer_blocks;
};
TORCH_MODULE(ChromaTransformer);

}  // namespace repa::models
