#include "core/train/backbone_pixart.h"

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/config/model_source.h"
#include "core/models/pixart_official_names.h"
#include "core/models/pixart_transformer.h"
#include "core/train/config_values.h"

namespace repa::train {

namespace {

class PixArtBackbone : public TextBackbone {
 public:
  PixArtBackbone(const nlohmann::json& config, const FamilyPipeline& pipeline, const BackboneShape& shape)
      : folder_(pipeline.denoiser_folder) {
    const auto json = config::read_model_folder_config(folder_, "a diffusers transformer/ folder of PixArtTransformer2DModel");
    // Another family's transformer (SD3, Flux, Sana, ...) is named before its config is read as PixArt's.
    const std::string class_name = json.value("_class_name", std::string("PixArtTransformer2DModel"));
    if (class_name != "PixArtTransformer2DModel")
      throw InputError("the transformer in '" + folder_ + "' is a " + class_name +
                       ", not a PixArtTransformer2DModel; model_family is pixart");
    try {
      config_ = models::PixArtTransformerConfig::from_diffusers(json);
    } catch (const InputError& e) {
      throw InputError("'" + folder_ + "/config.json': " + e.what());
    }
    if (config_.in_channels != shape.in_channels)
      throw InputError("the PixArt transformer in '" + folder_ + "' takes " + std::to_string(config_.in_channels) +
                       "-channel latents, the VAE gives " + std::to_string(shape.in_channels) +
                       " channels: the VAE does not belong to this model (pretrained_vae_model_name_or_path?)");
    if (config_.out_channels != config_.in_channels && config_.out_channels != 2 * config_.in_channels)
      throw InputError("the PixArt transformer in '" + folder_ + "' has out_channels " +
                       std::to_string(config_.out_channels) + ": a noise prediction needs " +
                       std::to_string(config_.in_channels) + " (or " + std::to_string(2 * config_.in_channels) +
                       " with the learned-sigma half)");
    text_width_ = config_.caption_channels > 0 ? config_.caption_channels : config_.cross_attention_dim;
    if (text_width_ != shape.text_width)
      throw InputError("the PixArt transformer in '" + folder_ + "' takes " + std::to_string(text_width_) +
                       "-wide caption states (caption_channels), the text encoder gives " +
                       std::to_string(shape.text_width) + "-wide ones: text_encoder/ does not belong to this model");
    if (flag_or(config, "crepa_enabled", false)) {
      tap_ = integer_or(config, "crepa_block_index", 8);
      if (tap_ < 0 || tap_ >= config_.num_layers)
        throw InputError("crepa_block_index " + std::to_string(tap_) +
                         " is not a block of the PixArt transformer in '" + folder_ + "': it has " +
                         std::to_string(config_.num_layers) + " transformer_blocks (0-based indices 0.." +
                         std::to_string(config_.num_layers - 1) + ")");
    }
    pixels_per_latent_ = shape.input_size > 0 ? integer_or(config, "resolution", 256) / shape.input_size : 1;
    if (pixels_per_latent_ < 1) pixels_per_latent_ = 1;
    model_ = models::PixArtTransformer(config_);
    models::load_pixart_weights(model_, folder_);
    model_->gradient_checkpointing = flag_or(config, "gradient_checkpointing", false);
    autocast_bf16_ = text_or(config, "mixed_precision", "no") == "bf16";
  }

  torch::nn::Module& module() override { return *model_; }

  BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                                     bool tap) override {
    if (!c.text.defined()) return forward(x, t, c.labels, tap);
    models::PixArtInputs in;
    in.hidden_states = x;
    in.timestep = t.to(x.device(), torch::kFloat32);
    in.encoder_hidden_states = c.text.to(x.device());
    if (c.text_mask.defined()) in.encoder_attention_mask = c.text_mask.to(x.device());
    if (config_.use_additional_conditions) {
      // The batch's pixel size and its height / width, as SimpleTuner's collate computes them from the latents.
      const double height = static_cast<double>(x.size(2) * pixels_per_latent_);
      const double width = static_cast<double>(x.size(3) * pixels_per_latent_);
      const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
      in.resolution = torch::tensor({height, width}, options).unsqueeze(0).expand({x.size(0), 2});
      in.aspect_ratio = torch::full({x.size(0), 1}, height / width, options);
    }
    models::DiTOutput out;
    {
      compat::AutocastScope autocast(autocast_bf16_ && x.is_cuda());
      out = model_->forward(in, tap ? tap_ : -1);
    }
    auto prediction = out.prediction.to(torch::kFloat32);
    // Learned sigma: the variance channels are dropped, as SimpleTuner's chunk(2, dim=1)[0].
    if (config_.out_channels == 2 * config_.in_channels) prediction = prediction.narrow(1, 0, config_.in_channels);
    return {prediction, out.tapped.defined() ? out.tapped.to(torch::kFloat32) : torch::Tensor()};
  }

  int64_t tap_width() const override { return tap_ >= 0 ? config_.inner_dim() : 0; }
  std::string describe() const override {
    return "pixart PixArtTransformer2DModel from '" + folder_ + "' (" + std::to_string(config_.num_layers) +
           " blocks, width " + std::to_string(config_.inner_dim()) + ", patch " + std::to_string(config_.patch_size) +
           ", masked cross-attention to " + std::to_string(text_width_) + "-wide T5 states" +
           (config_.out_channels == 2 * config_.in_channels ? ", learned sigma (noise half trained)" : "") +
           (config_.use_additional_conditions ? ", resolution + aspect-ratio conditions" : "") +
           (model_->gradient_checkpointing ? ", gradient checkpointing" : "") + ")" +
           (tap_ >= 0 ? ", REPA tap after transformer_blocks." + std::to_string(tap_) : "");
  }
  // The pipeline's weights are loaded at construction; a checkpoint's come through the trainer's resume.
  void load_weights(const std::string& path) override {
    throw InputError("'" + path +
                     "': a pixart run takes its weights from pretrained_model_name_or_path's transformer/");
  }

 private:
  std::string folder_;
  models::PixArtTransformerConfig config_;
  models::PixArtTransformer model_{nullptr};
  int64_t text_width_ = 0;
  int64_t tap_ = -1;
  int64_t pixels_per_latent_ = 8;
  bool autocast_bf16_ = false;
};

}  // namespace

std::unique_ptr<Backbone> make_pixart_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                               const BackboneShape& shape) {
  return std::make_unique<PixArtBackbone>(config, pipeline, shape);
}

}  // namespace repa::train
