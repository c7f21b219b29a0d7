// DINOv2 vision transformer (ViT-S/B/L/g, patch 14, optional register tokens), as facebookresearch/dinov2's
// DinoVisionTransformer computes forward_features. Parameters carry the torch.hub checkpoint names
// (`blocks.N.attn.qkv.weight`, `pos_embed`, ...); Hugging Face files are mapped onto them at load time
// (core/encoders/dinov2_weights.h).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include "core/nn/linear.h"

namespace repa::encoders {

enum class FeedForwardKind { Mlp, SwiGlu };

struct Dinov2Config {
  int64_t embed_dim = 384;
  int64_t depth = 12;
  int64_t num_heads = 6;
  int64_t patch_size = 14;
  int64_t position_grid = 37;        // the positional table covers position_grid² patches (518 px / 14)
  int64_t num_register_tokens = 0;
  FeedForwardKind ffn = FeedForwardKind::Mlp;
  int64_t ffn_hidden = 1536;         // hidden width; for SwiGLU the rounded width w3 consumes
  // Official interpolation of the positional table: plain models scale by (grid + 0.1) / M without
  // antialias; register models resize to the grid with antialias (offset 0).
  double interpolate_offset = 0.1;
  bool interpolate_antialias = false;
  double layer_norm_eps = 1e-6;

  // The released architectures: size "s", "b", "l" or "g", with or without the 4 registers.
  static Dinov2Config for_size(const std::string& size, bool registers);
  // SwiGLU's hidden width as the official code rounds it: int(hidden * 2 / 3) up to a multiple of 8.
  static int64_t swiglu_hidden(int64_t mlp_hidden);
  std::string describe() const;
};

// The normalised outputs of forward_features.
struct Dinov2Features {
  torch::Tensor cls_token;       // (B, D)
  torch::Tensor register_tokens; // (B, R, D), R = 0 without registers
  torch::Tensor patch_tokens;    // (B, h·w, D), row-major over the patch grid
  int64_t grid_h = 0, grid_w = 0;
};

struct LayerScaleImpl : torch::nn::Module {
  explicit LayerScaleImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

struct Dinov2AttentionImpl : torch::nn::Module {
  Dinov2AttentionImpl(int64_t dim, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t num_heads;
  repa::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Dinov2Attention);

// fc1 → exact GELU → fc2, or SwiGLU: w12 → (silu(x1) · x2) → w3.
struct Dinov2FeedForwardImpl : torch::nn::Module {
  Dinov2FeedForwardImpl(FeedForwardKind kind, int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  FeedForwardKind kind;
  repa::nn::Linear fc1{nullptr}, fc2{nullptr}, w12{nullptr}, w3{nullptr};
};
TORCH_MODULE(Dinov2FeedForward);

struct Dinov2BlockImpl : torch::nn::Module {
  explicit Dinov2BlockImpl(const Dinov2Config& config);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Dinov2Attention attn{nullptr};
  LayerScale ls1{nullptr}, ls2{nullptr};
  Dinov2FeedForward mlp{nullptr};
};
TORCH_MODULE(Dinov2Block);

struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int64_t patch_size, int64_t dim);
  torch::Tensor forward(const torch::Tensor& pixels);  // (B,3,H,W) → (B, h·w, D)
  int64_t patch_size;
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

struct Dinov2Impl : torch::nn::Module {
  explicit Dinov2Impl(const Dinov2Config& config);

  // Pixels already normalised (ImageNet mean/std), H and W multiples of the patch size.
  Dinov2Features forward(const torch::Tensor& pixels);

  // The positional table for an input of h×w patches (cls entry first), interpolated as the official code
  // does when the grid differs from the table's; computed in fp32, returned in `dtype`.
  torch::Tensor positional_embedding(int64_t grid_h, int64_t grid_w, torch::Dtype dtype) const;

  // The REPA code's variant: resample the table once to a new grid (bicubic, antialias, size=), so that
  // inputs of that grid use it as is.
  void resample_position_table(int64_t grid_h, int64_t grid_w);

  // Frozen: eval mode, no gradients.
  void freeze();

  const Dinov2Config& config() const { return config_; }

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed, register_tokens, mask_token;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  Dinov2Config config_;
  int64_t table_h_, table_w_;  // grid of pos_embed (square unless resampled)
};
TORCH_MODULE(Dinov2);

// A randomly initialised encoder (demo, tests, benchmarks), deterministic for a seed and independent of the
// global RNG: the official init scales (normal 0.02 weights and positions, zero biases, tokens 1e-6) with
// LayerScale 1.0 as the hub builders set it.
Dinov2 random_dinov2(const Dinov2Config& config, uint64_t seed);

}  // namespace repa::encoders
