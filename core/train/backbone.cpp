#include "core/train/backbone.h"

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/config/native_training.h"
#include "core/io/safetensors.h"
#include "core/models/sit.h"
#include "core/models/unet_2d.h"
#include "core/models/unet_2d_condition.h"
#include "core/train/config_values.h"
#include "core/train/family_backbones.h"
#include "core/config/family_pipeline.h"

namespace repa::train {

namespace {

class SiTBackbone : public Backbone {
 public:
  SiTBackbone(const nlohmann::json& config, const BackboneShape& shape)
      : config_(models::SiTConfig::from_json(config, shape.input_size, shape.in_channels, shape.num_classes)),
        model_(config_) {
    tap_block_ = models::tap_block_from_json(config, config_);
  }
  torch::nn::Module& module() override { return *model_; }
  BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y, bool tap) override {
    auto out = model_->forward(x, t, y, tap ? tap_block_ : -1);
    return {out.prediction, out.hidden};
  }
  int64_t null_label() const override { return config_.num_classes; }
  int64_t tap_width() const override { return tap_block_ >= 0 ? config_.hidden_size : 0; }
  std::string describe() const override {
    return "SiT depth " + std::to_string(config_.depth) + ", width " + std::to_string(config_.hidden_size) + ", " +
           std::to_string(config_.num_heads) + " heads, patch " + std::to_string(config_.patch_size) + ", " +
           std::to_string(config_.grid_size() * config_.grid_size()) + " tokens" +
           (tap_block_ >= 0 ? ", REPA tap after block " + std::to_string(tap_block_) : "");
  }
  void load_weights(const std::string& path) override { models::load_sit_checkpoint(model_, path); }

 private:
  models::SiTConfig config_;
  models::SiT model_;
  int64_t tap_block_ = -1;
};

// A built-in UNet2DModel configuration for small from-scratch runs, or a diffusers config.json.
nlohmann::json unet_config_for(const nlohmann::json& config, const BackboneShape& shape) {
  const std::string name = text_or(studio_settings(config), "unet_config", "");
  nlohmann::json unet;
  if (name.empty() || name == "tiny") {
    unet = {{"sample_size", shape.input_size},
            {"in_channels", shape.in_channels},
            {"out_channels", shape.in_channels},
            {"down_block_types", {"DownBlock2D", "AttnDownBlock2D"}},
            {"up_block_types", {"AttnUpBlock2D", "UpBlock2D"}},
            {"block_out_channels", {32, 64}},
            {"layers_per_block", 1},
            {"attention_head_dim", 8},
            {"norm_num_groups", 8}};
  } else {
    std::ifstream in(name);
    if (!in) throw InputError("studio.unet_config '" + name + "' is neither 'tiny' nor a readable config.json");
    unet = nlohmann::json::parse(in, nullptr, false);
    if (!unet.is_object()) throw InputError("studio.unet_config '" + name + "' is not a JSON object");
  }
  if (shape.num_classes > 0) {
    // One extra row: the null class for classifier-free guidance.
    unet.erase("class_embed_type");
    unet["num_class_embeds"] = shape.num_classes + 1;
  }
  return unet;
}

class UNetBackbone : public Backbone {
 public:
  UNetBackbone(const nlohmann::json& config, const BackboneShape& shape)
      : config_(models::UNet2DConfig::from_json(unet_config_for(config, shape))),
        model_(config_),
        num_classes_(shape.num_classes) {
    if (config_.in_channels != shape.in_channels)
      throw InputError("studio.unet_config has in_channels " + std::to_string(config_.in_channels) + ", the data has " +
                       std::to_string(shape.in_channels) + " channels");
    tap_ = flag_or(config, "urepa_enabled", false);
    // As for the SiT: mixed_precision "bf16" opens a bf16 autocast region in forward on CUDA, none on CPU.
    models::UNetMemoryOptions memory = model_->memory_options();
    memory.autocast_bf16 = text_or(config, "mixed_precision", "no") == "bf16";
    model_->set_memory_options(memory);
  }
  torch::nn::Module& module() override { return *model_; }
  BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y, bool tap) override {
    auto out = model_->forward(x, t, num_classes_ > 0 ? y : torch::Tensor());
    return {out.sample, tap ? out.mid_block : torch::Tensor()};
  }
  int64_t null_label() const override { return num_classes_; }
  int64_t tap_width() const override { return tap_ ? config_.block_out_channels.back() : 0; }
  std::string describe() const override {
    std::string channels;
    for (auto c : config_.block_out_channels) channels += (channels.empty() ? "" : "/") + std::to_string(c);
    return "UNet2DModel channels " + channels + (tap_ ? ", U-REPA on the mid block" : "");
  }
  void load_weights(const std::string& path) override {
    auto file = io::SafetensorsCheckpoint::open(path);
    torch::NoGradGuard no_grad;
    for (auto& item : model_->named_parameters()) {
      if (!file.contains(item.key())) throw InputError("'" + path + "' has no tensor '" + item.key() + "'");
      item.value().copy_(file.tensor(item.key()));
    }
  }

 private:
  models::UNet2DConfig config_;
  models::UNet2DModel model_;
  int64_t num_classes_;
  bool tap_ = false;
};

// A built-in UNet2DConditionModel for small text-conditioned runs from scratch, or a diffusers config.json;
// cross_attention_dim must match the text states.
nlohmann::json unet_condition_config_for(const nlohmann::json& config, const BackboneShape& shape) {
  const std::string name = text_or(studio_settings(config), "unet_config", "");
  nlohmann::json unet;
  if (name.empty() || name == "tiny") {
    unet = {{"sample_size", shape.input_size},
            {"in_channels", shape.in_channels},
            {"out_channels", shape.in_channels},
            {"down_block_types", {"DownBlock2D", "CrossAttnDownBlock2D"}},
            {"up_block_types", {"CrossAttnUpBlock2D", "UpBlock2D"}},
            {"block_out_channels", {32, 64}},
            {"layers_per_block", 1},
            {"attention_head_dim", 4},
            {"cross_attention_dim", shape.text_width},
            {"norm_num_groups", 8}};
  } else {
    std::ifstream in(name);
    if (!in) throw InputError("studio.unet_config '" + name + "' is neither 'tiny' nor a readable config.json");
    unet = nlohmann::json::parse(in, nullptr, false);
    if (!unet.is_object()) throw InputError("studio.unet_config '" + name + "' is not a JSON object");
  }
  return unet;
}

class TextUNetBackbone : public Backbone {
 public:
  TextUNetBackbone(const nlohmann::json& config, const BackboneShape& shape)
      : config_(models::UNet2DConditionConfig::from_json(unet_condition_config_for(config, shape))), model_(config_) {
    if (shape.text_width <= 0)
      throw InputError("studio.architecture 'unet2d_condition' needs text states (studio.text_encoder_path)");
    if (config_.in_channels != shape.in_channels)
      throw InputError("studio.unet_config has in_channels " + std::to_string(config_.in_channels) + ", the data has " +
                       std::to_string(shape.in_channels) + " channels");
    for (auto width : config_.cross_attention_dim)
      if (width != shape.text_width)
        throw InputError("studio.unet_config has cross_attention_dim " + std::to_string(width) +
                         ", the text encoders give " + std::to_string(shape.text_width) + "-wide states");
    if (!config_.addition_embed_type.empty() || config_.num_class_embeds > 0 || !config_.class_embed_type.empty())
      throw InputError(
          "studio.unet_config asks for class or added (pooled text, time id) embeddings, which the "
          "studio's text-conditioned UNet run does not feed yet; use a config without them");
    tap_ = flag_or(config, "urepa_enabled", false);
    models::UNetMemoryOptions memory = model_->memory_options();
    memory.autocast_bf16 = text_or(config, "mixed_precision", "no") == "bf16";
    model_->set_memory_options(memory);
  }
  torch::nn::Module& module() override { return *model_; }
  BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                                     bool tap) override {
    if (!c.text.defined()) return forward(x, t, c.labels, tap);
    auto out = model_->forward(x, t, c.text);
    return {out.sample, tap ? out.mid_block : torch::Tensor()};
  }
  BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor&, bool tap) override {
    if (!unconditional_.defined())
      throw InputError(
          "a text-conditioned UNet needs text states; samples are drawn by its run (which holds the "
          "empty caption's embedding)");
    Conditioning c;
    c.text = unconditional_.to(x.device()).expand({x.size(0), unconditional_.size(1), unconditional_.size(2)});
    return forward_conditioned(x, t, c, tap);
  }
  void set_unconditional_text(const torch::Tensor& states) override { unconditional_ = states; }
  int64_t null_label() const override { return 0; }
  int64_t tap_width() const override { return tap_ ? config_.block_out_channels.back() : 0; }
  std::string describe() const override {
    std::string channels;
    for (auto c : config_.block_out_channels) channels += (channels.empty() ? "" : "/") + std::to_string(c);
    return "UNet2DConditionModel channels " + channels + ", cross-attention to " +
           std::to_string(config_.cross_attention_dim.front()) + "-wide text states" +
           (tap_ ? ", U-REPA on the mid block" : "");
  }
  void load_weights(const std::string& path) override {
    auto file = io::SafetensorsCheckpoint::open(path);
    torch::NoGradGuard no_grad;
    for (auto& item : model_->named_parameters()) {
      if (!file.contains(item.key())) throw InputError("'" + path + "' has no tensor '" + item.key() + "'");
      item.value().copy_(file.tensor(item.key()));
    }
  }

 private:
  models::UNet2DConditionConfig config_;
  models::UNet2DConditionModel model_;
  torch::Tensor unconditional_;
  bool tap_ = false;
};

}  // namespace

Conditioning Conditioning::rows(const torch::Tensor& index) const {
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, index.to(t.device())) : t; };
  Conditioning out;
  out.labels = labels.defined() ? pick(labels) : index;
  out.text = pick(text);
  out.text_mask = pick(text_mask);
  out.pooled = pick(pooled);
  out.time_ids = pick(time_ids);
  return out;
}

std::string unsupported_family_message(const nlohmann::json& config) {
  return repa::config::native_training_blocker(config);  // one rule for the worker and the window
}

std::unique_ptr<Backbone> make_backbone(const nlohmann::json& config, const BackboneShape& shape) {
  const std::string architecture = text_or(studio_settings(config), "architecture", "sit");
  if (architecture == "sit") return std::make_unique<SiTBackbone>(config, shape);
  if (architecture == "unet2d") return std::make_unique<UNetBackbone>(config, shape);
  if (architecture == "unet2d_condition") return std::make_unique<TextUNetBackbone>(config, shape);
  if (architecture == "family") return make_family_backbone(config, repa::config::resolve_family_pipeline(config), shape);
  throw InputError("studio.architecture '" + architecture + "' is unknown (sit, unet2d, unet2d_condition)");
}

}  // namespace repa::train
