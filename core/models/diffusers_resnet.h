// diffusers' convolutional pieces: ResnetBlock2D (with its time-embedding projection), Downsample2D,
// Upsample2D, and the sinusoidal timestep projection with its TimestepEmbedding MLP.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "core/models/diffusers_layers.h"

namespace repa::models::diffusers {

// What every ResnetBlock2D of one model shares.
struct ResnetOptions {
  int64_t temb_channels = 0;  // 0: no time embedding (the VAE)
  int64_t groups = 32;
  double eps = 1e-6;
  Activation act = Activation::SiLU;
  bool scale_shift = false;  // resnet_time_scale_shift "scale_shift" instead of "default"
  double output_scale_factor = 1.0;
  double dropout = 0.0;
};

struct ResnetBlock2DImpl : torch::nn::Module {
  ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, const ResnetOptions& options);
  // `temb` (B, temb_channels) may be undefined when the block has no time projection.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb);

  ResnetOptions options;
  GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  Linear time_emb_proj{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

// A stride-2 3x3 conv; with padding 0 (the VAE encoder) the input is first padded on the right and bottom.
struct Downsample2DImpl : torch::nn::Module {
  Downsample2DImpl(int64_t channels, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t padding;
  Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2D);

// Nearest-neighbour x2 (or to an explicit size, for inputs not divisible by the UNet's total factor), then a conv.
struct Upsample2DImpl : torch::nn::Module {
  explicit Upsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x, const std::vector<int64_t>& output_size = {});
  Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

// diffusers' get_timestep_embedding: (N,) timesteps → (N, dim) float32 sin/cos features.
torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                                 double downscale_freq_shift, double max_period = 10000.0);

// linear_1 → act → linear_2: maps timestep (or class/added-condition) features to the time-embedding width.
struct TimestepEmbeddingImpl : torch::nn::Module {
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim, Activation act = Activation::SiLU);
  torch::Tensor forward(const torch::Tensor& x);
  Activation act;
  Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace repa::models::diffusers
