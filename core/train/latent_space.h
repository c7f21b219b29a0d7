// Where diffusion happens: pixel space (no VAE, images in [-1,1]) or the latent space of a diffusers
// AutoencoderKL (studio.vae_path), with the family's scaling and shift applied outside the VAE. Latents are
// cached as the posterior's mean and std, and a fresh latent is sampled from them at every step, as the
// REPA code does.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/data/feature_cache.h"
#include "core/models/autoencoder_kl.h"

namespace repa::train {

class LatentSpace {
 public:
  // Pixel space when studio.vae_path is empty; otherwise loads the VAE folder (errors name the file).
  LatentSpace(const nlohmann::json& config, const torch::Device& device);

  bool is_pixel_space() const { return !vae_; }
  int64_t channels() const;
  int64_t downsampling() const;  // 1 in pixel space
  std::string describe() const;
  // What changes the cached posterior (VAE weights path and size, resolution, crop).
  nlohmann::json cache_settings(int64_t resolution) const;

  // Pixels (B,3,H,W) in [-1,1] → {"mean", "std"} unscaled posterior, fp32.
  data::TensorMap encode(const torch::Tensor& pixels);
  // The model's input: (mean + std·ε − shift) · scale; in pixel space `mean` are the pixels themselves.
  torch::Tensor model_input(const torch::Tensor& mean, const torch::Tensor& std) const;
  // The same with ε given (data parallelism draws it for the global batch and passes each rank its rows).
  torch::Tensor model_input(const torch::Tensor& mean, const torch::Tensor& std, const torch::Tensor& noise) const;
  // Back to pixels in [-1,1] for sample grids.
  torch::Tensor to_pixels(const torch::Tensor& model_space);
  // What the VAE makes of pixels in [-1,1]: decode(posterior mean), not clamped (studio.teacher_input
  // "vae_decode" feeds this to the teacher). InputError in pixel space.
  torch::Tensor reconstruct(const torch::Tensor& pixels);

  // SimpleTuner's crepa_drop_vae_encoder: frees the VAE's encoder and quant_conv once the latents are cached,
  // keeping the decoder. encode() and reconstruct() then throw an Error that says so.
  void drop_encoder();
  bool encoder_dropped() const { return encoder_dropped_; }
  const models::AutoencoderKL& vae() const { return vae_; }  // empty in pixel space

 private:
  models::AutoencoderKL vae_{nullptr};
  std::string vae_path_;
  double scale_ = 0.18215, shift_ = 0.0;
  bool encoder_dropped_ = false;
  torch::Device device_;
};

}  // namespace repa::train
