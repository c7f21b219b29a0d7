// The denoisers of the text-to-image families the worker trains from a diffusers pipeline folder, behind the
// Backbone interface: one factory per model_family in one table (family_backbones.cpp). TextBackbone holds
// what they share: the validation prompts' conditioning, looked up by label when the samplers call forward().
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/train/backbone.h"
#include "core/config/family_pipeline.h"

namespace repa::train {

using config::FamilyPipeline;

class TextBackbone : public Backbone {
 public:
  // labels index the prompt table (set_prompt_table); InputError when no table was set.
  BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& model_time, const torch::Tensor& labels,
                         bool tap) override;
  void set_prompt_table(const Conditioning& table) override { prompts_ = table; }
  int64_t null_label() const override { return prompts_.text.defined() ? prompts_.text.size(0) - 1 : 0; }

 private:
  Conditioning prompts_;
};

using FamilyBackboneFactory =
    std::function<std::unique_ptr<Backbone>(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                            const BackboneShape& shape)>;

// The backbone of config's model_family, built from pipeline.denoiser_folder with its weights. `shape` carries
// the latent channels and the text width the run's encoders give, which the denoiser must match (InputError
// naming the mismatch otherwise).
std::unique_ptr<Backbone> make_family_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                               const BackboneShape& shape);

// SD 1.x, SD 2.x and SDXL: diffusers' UNet2DConditionModel (SDXL's added text_time embedding fed with the pooled
// text embedding and time_ids); U-REPA taps the mid block.
std::unique_ptr<Backbone> make_sd_unet_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                                const BackboneShape& shape);

}  // namespace repa::train
