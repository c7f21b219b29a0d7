// The conditioning and patch embeddings diffusers' DiT transformers share, under diffusers' names:
// sinusoidal timestep features (Timesteps), TimestepEmbedding (linear_1 → act → linear_2), the caption projection
// PixArtAlphaTextProjection, PixArt-α's timestep + size embeddings, AdaLayerNormSingle (adaLN-single), and the
// conv PatchEmbed with 2-D sin-cos positions computed on the fly (or cropped from a stored table).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>

#include "core/models/diffusers_layers.h"

namespace repa::models::dit {

// diffusers' get_timestep_embedding: (N,) → (N, dim) fp32 [sin, cos] of t · scale · exp(−ln(max_period) · i /
// (dim/2 − downscale_freq_shift)); flip_sin_to_cos puts cos first; an odd dim gets a trailing zero column.
torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double downscale_freq_shift,
                                double scale = 1.0, double max_period = 10000.0);

// diffusers' get_2d_sincos_pos_embed (torch path) for a grid_h × grid_w token grid: coordinates
// arange(n) / (n / base_size) / interpolation_scale computed in fp32, then the sin-cos of the column coordinate
// (first half of the width) and of the row coordinate (second half) in fp64. (grid_h·grid_w, embed_dim), fp32.
torch::Tensor sincos_2d_position_table(int64_t embed_dim, int64_t grid_h, int64_t grid_w, double base_size,
                                       double interpolation_scale);

// linear_1 → SiLU → linear_2 (diffusers' TimestepEmbedding with its default act_fn).
struct TimestepEmbeddingImpl : torch::nn::Module {
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim, int64_t out_dim = 0, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

// PixArtAlphaTextProjection: linear_1 → act_1 (gelu_tanh | silu | silu_fp32) → linear_2.
struct TextProjectionImpl : torch::nn::Module {
  TextProjectionImpl(int64_t in_features, int64_t hidden_size, int64_t out_features = 0,
                     const std::string& act_fn = "gelu_tanh");
  torch::Tensor forward(const torch::Tensor& caption);
  std::string act_fn;
  diffusers::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TextProjection);

// PixArtAlphaCombinedTimestepSizeEmbeddings: timestep_embedder over 256 flipped sinusoid features; with
// additional conditions, resolution_embedder (height, width) and aspect_ratio_embedder (each embedding_dim / 3
// wide) are concatenated and added.
struct CombinedTimestepSizeEmbeddingsImpl : torch::nn::Module {
  CombinedTimestepSizeEmbeddingsImpl(int64_t embedding_dim, bool use_additional_conditions);
  // timestep (B,); resolution (B, 2) and aspect_ratio (B, 1) when additional conditions are on.
  torch::Tensor forward(const torch::Tensor& timestep, const torch::Tensor& resolution,
                        const torch::Tensor& aspect_ratio, torch::ScalarType hidden_dtype);
  bool use_additional_conditions;
  TimestepEmbedding timestep_embedder{nullptr}, resolution_embedder{nullptr}, aspect_ratio_embedder{nullptr};
};
TORCH_MODULE(CombinedTimestepSizeEmbeddings);

// AdaLayerNormSingle (adaLN-single): emb (the combined embeddings) → SiLU → linear (6·D). Returns the 6·D
// modulation every block reads and the embedded timestep the output layer reads.
struct AdaLayerNormSingleImpl : torch::nn::Module {
  AdaLayerNormSingleImpl(int64_t embedding_dim, bool use_additional_conditions);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& timestep, const torch::Tensor& resolution,
                                                  const torch::Tensor& aspect_ratio, torch::ScalarType hidden_dtype);
  CombinedTimestepSizeEmbeddings emb{nullptr};
  diffusers::Linear linear{nullptr};
};
TORCH_MODULE(AdaLayerNormSingle);

struct PatchEmbedOptions {
  int64_t height = 224, width = 224;  // the model's sample_size: sets base_size = height / patch_size
  int64_t patch_size = 16;
  int64_t in_channels = 3;
  int64_t embed_dim = 768;
  bool layer_norm = false;  // a non-affine LayerNorm (eps 1e-6) named norm after the projection
  bool bias = true;
  double interpolation_scale = 1.0;
  bool sincos = true;              // false: no positions (pos_embed_type None)
  int64_t pos_embed_max_size = 0;  // > 0: a stored (1, M·M, D) table named pos_embed, centre-cropped to the grid
};

// diffusers' PatchEmbed: proj (a stride-p conv), tokens (B, h·w, D) in raster order, plus positions.
struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const PatchEmbedOptions& options);
  // latent (B, C, H, W) with H, W divisible by the patch (checked, named) → (B, H/p · W/p, D).
  torch::Tensor forward(const torch::Tensor& latent);
  torch::Tensor cropped_pos_embed(int64_t grid_h, int64_t grid_w) const;

  PatchEmbedOptions options;
  diffusers::Conv2d proj{nullptr};
  diffusers::LayerNorm norm{nullptr};
  torch::Tensor pos_embed;  // the stored table (pos_embed_max_size only): the sin-cos table until a checkpoint loads
};
TORCH_MODULE(PatchEmbed);

}  // namespace repa::models::dit
