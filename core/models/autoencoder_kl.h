// diffusers' AutoencoderKL (v0.21 layout), the SD-family VAE: encode → posterior mean and log-variance,
// decode ← latents. The family's scaling and shift factors are applied by the caller, not here.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/models/diffusers_blocks.h"

namespace repa::models {

struct AutoencoderKLConfig {
  nlohmann::json source;
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<std::string> down_block_types, up_block_types;
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 1;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  bool mid_block_add_attention = true;
  bool use_quant_conv = true, use_post_quant_conv = true;
  double scaling_factor = 0.18215;  // informational: latents = (mean - shift_factor) · scaling_factor
  double shift_factor = 0.0;

  static AutoencoderKLConfig from_json(const nlohmann::json& config);
};

struct VaeEncoderImpl : torch::nn::Module {
  explicit VaeEncoderImpl(const AutoencoderKLConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  diffusers::Activation act;
  diffusers::Conv2d conv_in{nullptr}, conv_out{nullptr};
  std::vector<diffusers::DownBlock> down_blocks;
  diffusers::MidBlock mid_block{nullptr};
  diffusers::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(VaeEncoder);

struct VaeDecoderImpl : torch::nn::Module {
  explicit VaeDecoderImpl(const AutoencoderKLConfig& config);
  torch::Tensor forward(const torch::Tensor& z);
  diffusers::Activation act;
  diffusers::Conv2d conv_in{nullptr}, conv_out{nullptr};
  diffusers::MidBlock mid_block{nullptr};
  std::vector<diffusers::UpBlock> up_blocks;
  diffusers::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(VaeDecoder);

// The diagonal Gaussian posterior of an encode; logvar is clamped to [-30, 20] as diffusers does.
struct LatentPosterior {
  torch::Tensor mean;
  torch::Tensor logvar;
  torch::Tensor std() const { return torch::exp(0.5 * logvar); }
  torch::Tensor sample(const torch::Tensor& noise) const { return mean + std() * noise; }
};

struct AutoencoderKLImpl : torch::nn::Module {
  explicit AutoencoderKLImpl(const AutoencoderKLConfig& config);
  LatentPosterior encode(const torch::Tensor& pixels);  // pixels in [-1, 1], (B, in, H, W)
  torch::Tensor decode(const torch::Tensor& latents);   // unscaled latents (B, latent, h, w)
  // Spatial downsampling factor between pixels and latents (8 for the SD VAEs).
  int64_t downsampling_factor() const;

  AutoencoderKLConfig config;
  VaeEncoder encoder{nullptr};
  VaeDecoder decoder{nullptr};
  diffusers::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(AutoencoderKL);

// A diffusers VAE folder (config.json + diffusion_pytorch_model.safetensors), weights loaded and checked.
AutoencoderKL load_autoencoder_kl(const std::string& folder);

}  // namespace repa::models
