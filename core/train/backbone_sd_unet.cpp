// SD 1.x / 2.x / XL denoisers for the family runs: the pipeline's unet/ loaded as it is, checked against the
// family, the run's text encoders and the VAE before the first step.

#include "core/base/error.h"
#include "core/config/model_source.h"
#include "core/models/unet_2d_condition.h"
#include "core/train/config_values.h"
#include "core/train/family_backbones.h"

namespace repa::train {

namespace {

std::string sizes(const std::vector<int64_t>& values) {
  std::string out;
  for (auto v : values) out += (out.empty() ? "" : "/") + std::to_string(v);
  return out;
}

class SdUNetBackbone : public TextBackbone {
 public:
  SdUNetBackbone(const nlohmann::json& config, const FamilyPipeline& pipeline, const BackboneShape& shape)
      : family_(pipeline.family), folder_(pipeline.denoiser_folder) {
    const auto unet_config = models::UNet2DConditionConfig::from_json(
        config::read_model_folder_config(folder_, "a diffusers unet/ folder"));
    check_family(unet_config);
    if (unet_config.in_channels != shape.in_channels)
      throw InputError("the UNet in '" + folder_ + "' takes " + std::to_string(unet_config.in_channels) +
                       "-channel latents, the VAE gives " + std::to_string(shape.in_channels) +
                       " channels: the VAE does not belong to this model (pretrained_vae_model_name_or_path?)");
    for (auto width : unet_config.cross_attention_dim)
      if (width != shape.text_width)
        throw InputError("the UNet in '" + folder_ + "' cross-attends to " + std::to_string(width) +
                         "-wide text states, the text encoders give " + std::to_string(shape.text_width) +
                         "-wide ones: text_encoder*/ do not belong to this model_family '" + family_ + "'");
    model_ = models::load_unet_2d_condition(folder_, unet_config);
    config_ = model_->config;
    added_ = config_.addition_embed_type == "text_time";
    tap_ = flag_or(config, "urepa_enabled", false);
    models::UNetMemoryOptions memory = model_->memory_options();
    memory.autocast_bf16 = text_or(config, "mixed_precision", "no") == "bf16";
    memory.gradient_checkpointing = flag_or(config, "gradient_checkpointing", false);
    model_->set_memory_options(memory);
  }

  torch::nn::Module& module() override { return *model_; }

  BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                                     bool tap) override {
    if (!c.text.defined()) return forward(x, t, c.labels, tap);
    models::UNetConditioning extra;
    if (added_) {
      if (!c.pooled.defined() || !c.time_ids.defined())
        throw Error("SDXL's UNet needs the pooled text embedding and time_ids in every step");
      extra.text_embeds = c.pooled.to(x.device());
      extra.time_ids = c.time_ids.to(x.device());
    }
    auto out = model_->forward(x, t, c.text.to(x.device()), extra);
    return {out.sample, tap ? out.mid_block : torch::Tensor()};
  }

  int64_t tap_width() const override { return tap_ ? config_.block_out_channels.back() : 0; }
  std::string describe() const override {
    return family_ + " UNet2DConditionModel from '" + folder_ + "' (channels " + sizes(config_.block_out_channels) +
           ", cross-attention to " + std::to_string(config_.cross_attention_dim.front()) + "-wide text states" +
           (added_ ? ", pooled text + time_ids" : "") + ")" + (tap_ ? ", U-REPA on the mid block" : "");
  }
  // The pipeline's weights are loaded at construction; a checkpoint's come through the trainer's resume.
  void load_weights(const std::string& path) override {
    throw InputError("'" + path + "': a " + family_ + " run takes its weights from pretrained_model_name_or_path's unet/");
  }

 private:
  // The unet/ of another family is named as such before any weight is read.
  void check_family(const models::UNet2DConditionConfig& c) const {
    const bool sdxl_shaped = c.addition_embed_type == "text_time";
    const int64_t width = c.cross_attention_dim.empty() ? 0 : c.cross_attention_dim.front();
    std::string looks;
    if (c.encoder_hid_dim > 0) looks = "kolors";
    else if (sdxl_shaped) looks = "sdxl";
    else if (width == 1024) looks = "sd2x";
    else looks = "sd1x";
    const bool ok = (family_ == "sdxl" && sdxl_shaped) || (family_ != "sdxl" && !sdxl_shaped && c.encoder_hid_dim == 0);
    if (!ok)
      throw InputError("the UNet in '" + folder_ + "' is " + looks + "-shaped (addition_embed_type '" + c.addition_embed_type + "', cross_attention_dim " +
                       std::to_string(width) + "); model_family is " + family_);
  }

  std::string family_, folder_;
  models::UNet2DConditionConfig config_;
  models::UNet2DConditionModel model_{nullptr};
  bool added_ = false;
  bool tap_ = false;
};

}  // namespace

std::unique_ptr<Backbone> make_sd_unet_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                                const BackboneShape& shape) {
  return std::make_unique<SdUNetBackbone>(config, pipeline, shape);
}

}  // namespace repa::train
