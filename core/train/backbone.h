// The denoiser a run trains, behind one interface: a SiT (REPA taps a block's hidden states), a
// diffusers-layout UNet2DModel or a text-conditioned UNet2DConditionModel (U-REPA taps the mid-block output).
// The trainer never needs to know which.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace repa::train {

struct BackboneOutput {
  torch::Tensor prediction;  // like x
  torch::Tensor tapped;      // SiT: (B,S,D) hidden states; UNet: (B,C,h,w) mid block; undefined when not asked
};

struct BackboneShape {
  int64_t input_size = 32;  // side of what the backbone sees (pixels, or latents)
  int64_t in_channels = 3;
  int64_t num_classes = 0;  // 0: unconditional
  int64_t text_width = 0;   // width of the text states a text-conditioned backbone cross-attends to
};

// What a step conditions on; each backbone reads the members it uses (class labels, or the text
// encoders' states from the text-embedding cache; pooled and mask for the families that take them).
struct Conditioning {
  torch::Tensor labels;     // (B,) int64
  torch::Tensor text;       // (B, L, D) encoder_hidden_states
  torch::Tensor text_mask;  // (B, L) 1 keep / 0 padding, undefined when the family attends to padding
  torch::Tensor pooled;     // (B, P)
  torch::Tensor time_ids;   // (B, 6) SDXL's size conditioning: original (resized) size, crop top-left, target size

  // Rows `index` of every defined member (the prompt table's lookup).
  Conditioning rows(const torch::Tensor& index) const;
};

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual torch::nn::Module& module() = 0;
  // x (B,C,H,W); model_time (B,) as the objective gives it; labels (B,) (null label = null_label()).
  virtual BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& model_time, const torch::Tensor& labels,
                                 bool tap) = 0;
  // The step's forward with every conditioning; backbones that only take labels use conditioning.labels.
  virtual BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& model_time,
                                             const Conditioning& conditioning, bool tap) {
    return forward(x, model_time, conditioning.labels, tap);
  }
  // Text-conditioned backbones: the states forward() uses when given only labels (the empty caption's, so
  // samples drawn through the label path are unconditional). Others ignore it.
  virtual void set_unconditional_text(const torch::Tensor& /*states (1, L, D)*/) {}
  // The label that means "no class" (classifier-free guidance, unconditional runs).
  virtual int64_t null_label() const = 0;
  // Width of the tapped tensor (SiT hidden size, UNet mid-block channels); 0 when it taps nothing.
  virtual int64_t tap_width() const = 0;
  virtual std::string describe() const = 0;
  // Text-to-image families: the conditioning of the validation prompts (rows 0..P-1) and of the negative prompt
  // (row P). forward() then reads labels as rows of this table, and null_label() is P, so the samplers'
  // classifier-free guidance runs on prompts as it runs on classes.
  virtual void set_prompt_table(const Conditioning& /*table*/) {}
  // The parameter names of the official checkpoints (model.safetensors in a checkpoint folder).
  virtual void load_weights(const std::string& path) = 0;
};

// studio.architecture "sit", "unet2d" or "unet2d_condition" (a UNet2DConditionModel cross-attending to
// shape.text_width-wide text states). Throws InputError naming the key for an unknown architecture.
std::unique_ptr<Backbone> make_backbone(const nlohmann::json& config, const BackboneShape& shape);

// Text-conditioned SimpleTuner families (flux, sd3, sdxl, ...) are trained by SimpleTuner from an export;
// returns the message to stop with, or "" when the config is one this worker trains.
std::string unsupported_family_message(const nlohmann::json& config);

}  // namespace repa::train
