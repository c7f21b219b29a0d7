#include "core/train/latent_space.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/train/config_values.h"

namespace repa::train {

LatentSpace::LatentSpace(const nlohmann::json& config, const torch::Device& device) : device_(device) {
  const auto& studio = studio_settings(config);
  vae_path_ = text_or(studio, "vae_path", "");
  scale_ = number_or(studio, "latent_scaling_factor", 0.18215);
  shift_ = number_or(studio, "latent_shift_factor", 0.0);
  if (vae_path_.empty()) return;
  if (!std::filesystem::is_directory(vae_path_))
    throw InputError("studio.vae_path '" + vae_path_ + "' is not a diffusers VAE folder (config.json + weights)");
  vae_ = models::load_autoencoder_kl(vae_path_);
  vae_->to(device_);
  vae_->eval();
  for (auto& p : vae_->parameters()) p.set_requires_grad(false);
}

int64_t LatentSpace::channels() const { return vae_ ? vae_->config.latent_channels : 3; }

int64_t LatentSpace::downsampling() const { return vae_ ? vae_->downsampling_factor() : 1; }

std::string LatentSpace::describe() const {
  if (!vae_) return "pixel space";
  return "latent space of '" + vae_path_ + "' (" + std::to_string(channels()) + " channels, /" +
         std::to_string(downsampling()) + ", scale " + std::to_string(scale_) + ", shift " + std::to_string(shift_) + ")";
}

nlohmann::json LatentSpace::cache_settings(int64_t resolution) const {
  std::error_code ec;
  const auto weights = std::filesystem::path(vae_path_) / "diffusion_pytorch_model.safetensors";
  return {{"vae", std::filesystem::absolute(vae_path_, ec).string()},
          {"vae_bytes", std::filesystem::exists(weights) ? static_cast<int64_t>(std::filesystem::file_size(weights)) : 0},
          {"resolution", resolution},
          {"crop", "adm_center"}};
}

namespace {
[[noreturn]] void encoder_gone() {
  throw Error("the VAE's encoder was freed (crepa_drop_vae_encoder) after the latents were cached; nothing can "
              "be encoded in this run any more");
}
}  // namespace

data::TensorMap LatentSpace::encode(const torch::Tensor& pixels) {
  torch::NoGradGuard no_grad;
  if (!vae_) return {{"mean", pixels}, {"std", torch::zeros_like(pixels)}};
  if (encoder_dropped_) encoder_gone();
  auto posterior = vae_->encode(pixels.to(device_));
  return {{"mean", posterior.mean.to(torch::kFloat32)}, {"std", posterior.std().to(torch::kFloat32)}};
}

torch::Tensor LatentSpace::model_input(const torch::Tensor& mean, const torch::Tensor& std) const {
  if (!vae_) return mean;
  return (mean + std * torch::randn_like(mean) - shift_) * scale_;
}

torch::Tensor LatentSpace::model_input(const torch::Tensor& mean, const torch::Tensor& std,
                                       const torch::Tensor& noise) const {
  if (!vae_) return mean;
  return (mean + std * noise - shift_) * scale_;
}

torch::Tensor LatentSpace::to_pixels(const torch::Tensor& model_space) {
  torch::NoGradGuard no_grad;
  if (!vae_) return model_space;
  return vae_->decode(model_space.to(device_, torch::kFloat32) / scale_ + shift_);
}

torch::Tensor LatentSpace::reconstruct(const torch::Tensor& pixels) {
  torch::NoGradGuard no_grad;
  if (!vae_)
    throw InputError("studio.teacher_input \"vae_decode\" needs a latent space run: studio.vae_path is empty");
  if (encoder_dropped_) encoder_gone();
  // The posterior mean: the cached latents are resampled at every step, so the mean is what stays fixed.
  return vae_->decode(vae_->encode(pixels.to(device_, torch::kFloat32)).mean).to(torch::kFloat32);
}

void LatentSpace::drop_encoder() {
  if (!vae_ || encoder_dropped_) return;
  vae_->unregister_module("encoder");
  vae_->encoder = nullptr;
  if (vae_->quant_conv) {
    vae_->unregister_module("quant_conv");
    vae_->quant_conv = nullptr;
  }
  encoder_dropped_ = true;
}

}  // namespace repa::train
