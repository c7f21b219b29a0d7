// The denoiser a run trains, behind one interface: a SiT (REPA taps a block's hidden states) or a
// diffusers-layout UNet2DModel (U-REPA taps the mid-block output). The trainer never needs to know which.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace repa::train {

struct BackboneOutput {
  torch::Tensor prediction;  // like x
  torch::Tensor tapped;      // SiT: (B,S,D) hidden states; UNet: (B,C,h,w) mid block; undefined when not asked
};

struct BackboneShape {
  int64_t input_size = 32;   // side of what the backbone sees (pixels, or latents)
  int64_t in_channels = 3;
  int64_t num_classes = 0;   // 0: unconditional
};

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual torch::nn::Module& module() = 0;
  // x (B,C,H,W); model_time (B,) as the objective gives it; labels (B,) (null label = null_label()).
  virtual BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& model_time,
                                 const torch::Tensor& labels, bool tap) = 0;
  // The label that means "no class" (classifier-free guidance, unconditional runs).
  virtual int64_t null_label() const = 0;
  // Width of the tapped tensor (SiT hidden size, UNet mid-block channels); 0 when it taps nothing.
  virtual int64_t tap_width() const = 0;
  virtual std::string describe() const = 0;
  // The parameter names of the official checkpoints (model.safetensors in a checkpoint folder).
  virtual void load_weights(const std::string& path) = 0;
};

// studio.architecture "sit" or "unet2d". Throws InputError for architectures this worker cannot train
// (unet2d_condition needs text encoders) naming the key and what to use instead.
std::unique_ptr<Backbone> make_backbone(const nlohmann::json& config, const BackboneShape& shape);

// Text-conditioned SimpleTuner families (flux, sd3, sdxl, ...) are trained by SimpleTuner from an export;
// returns the message to stop with, or "" when the config is one this worker trains.
std::string unsupported_family_message(const nlohmann::json& config);

}  // namespace repa::train
