// SD3 / SD3.5, Flux.1 (dev, schnell) and Chroma denoisers for the family runs: the pipeline's transformer/
// loaded as it is and checked against the family, the VAE and the text encoders before the first step; the flow
// objective's σ converted to each transformer's timestep; Flux's and Chroma's latents packed 2×2 into tokens with
// the position ids diffusers' pipelines build, unpacked for the loss; the REPA tap is SimpleTuner's
// crepa_block_index over double then single blocks.
#include "core/train/backbone_flow_families.h"

#include <cmath>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/config/family_pipeline.h"
#include "core/config/flow_family_settings.h"
#include "core/diffusion/flow_sigmas.h"
#include "core/models/chroma_transformer.h"
#include "core/models/flux_transformer.h"
#include "core/models/sd3_transformer.h"
#include "core/train/config_values.h"

namespace repa::train {

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

// The run settings every flow-family backbone reads.
struct FlowBackboneSettings {
  int64_t tap = -1;  // crepa_block_index when crepa_enabled, −1 otherwise
  bool bf16 = false;
  bool checkpointing = false;

  static FlowBackboneSettings from_config(const nlohmann::json& config) {
    FlowBackboneSettings s;
    if (flag_or(config, "crepa_enabled", false)) s.tap = integer_or(config, "crepa_block_index", 8);
    s.bf16 = text_or(config, "mixed_precision", "no") == "bf16";
    s.checkpointing = flag_or(config, "gradient_checkpointing", false);
    return s;
  }
};

// transformer/config.json, after checking that its _class_name (when present) is the family's and, without one,
// that its keys are not another family's.
nlohmann::json family_transformer_config(const std::string& folder, const std::string& family) {
  if (const auto problem = config::transformer_class_problem(folder, family); !problem.empty())
    throw InputError(problem);
  auto json = config::transformer_config(folder);
  const bool flux_shaped = json.contains("num_single_layers");
  const bool chroma_shaped = json.contains("approximator_num_channels");
  std::string looks;
  if (family == "sd3" && flux_shaped) looks = chroma_shaped ? "chroma" : "flux";
  if (family == "flux" && (chroma_shaped || json.contains("caption_projection_dim")))
    looks = chroma_shaped ? "chroma" : "sd3";
  if (family == "chroma" && !chroma_shaped) looks = flux_shaped ? "flux" : "sd3";
  if (!looks.empty())
    throw InputError("the transformer in '" + folder + "' is " + looks +
                     "-shaped (its config.json keys); model_family is " + family);
  return json;
}

void check_latent_channels(const std::string& folder, int64_t wants, int64_t vae_channels, int64_t pack) {
  if (wants == vae_channels * pack) return;
  throw InputError("the transformer in '" + folder + "' takes " + str(wants / pack) + "-channel latents" +
                   (pack > 1 ? " (" + str(wants) + " channels packed 2x2)" : std::string()) + ", the VAE gives " +
                   str(vae_channels) + " channels: the VAE does not belong to this model");
}

void check_text_width(const std::string& folder, int64_t wants, int64_t gives, const std::string& family) {
  if (wants == gives) return;
  throw InputError("the transformer in '" + folder + "' takes " + str(wants) +
                   "-wide text states (joint_attention_dim), "
                   "the text encoders give " +
                   str(gives) + "-wide ones: text_encoder*/ do not belong to this model_family '" + family + "'");
}

}  // namespace

torch::Tensor flux_pack_latents(const torch::Tensor& x) {
  const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  if (h % 2 != 0 || w % 2 != 0)
    throw InputError("Flux-layout models pack 2x2 latent patches: the latent grid " + str(h) + "x" + str(w) +
                     " is not even (resolution a multiple of 16)");
  return x.view({b, c, h / 2, 2, w / 2, 2}).permute({0, 2, 4, 1, 3, 5}).reshape({b, (h / 2) * (w / 2), c * 4});
}

torch::Tensor flux_unpack_latents(const torch::Tensor& tokens, int64_t channels, int64_t h, int64_t w) {
  const auto b = tokens.size(0);
  return tokens.view({b, h / 2, w / 2, channels, 2, 2}).permute({0, 3, 1, 4, 2, 5}).reshape({b, channels, h, w});
}

torch::Tensor flux_image_ids(int64_t h, int64_t w, const torch::Device& device) {
  const auto rows = torch::arange(h / 2, torch::kFloat32).view({-1, 1}).expand({h / 2, w / 2});
  const auto cols = torch::arange(w / 2, torch::kFloat32).view({1, -1}).expand({h / 2, w / 2});
  return torch::stack({torch::zeros_like(rows), rows, cols}, -1).reshape({-1, 3}).to(device);
}

namespace {

class Sd3Backbone : public TextBackbone {
 public:
  Sd3Backbone(const nlohmann::json& config, const FamilyPipeline& pipeline, const BackboneShape& shape)
      : folder_(pipeline.denoiser_folder), settings_(FlowBackboneSettings::from_config(config)) {
    config_ = models::SD3TransformerConfig::from_json(family_transformer_config(folder_, "sd3"));
    check_latent_channels(folder_, config_.in_channels, shape.in_channels, 1);
    check_text_width(folder_, config_.joint_attention_dim, shape.text_width, "sd3");
    models::check_tap_index(settings_.tap, config_.num_layers, 0, "the SD3 transformer in '" + folder_ + "'");
    model_ = models::SD3Transformer(config_);
    model_->load_weights(folder_);
    model_->gradient_checkpointing = settings_.checkpointing;
  }

  torch::nn::Module& module() override { return *model_; }

  BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c,
                                     bool tap) override {
    if (!c.text.defined() || !c.pooled.defined())
      throw Error("SD3's transformer needs the text states and the pooled CLIP embeddings in every step");
    if (c.pooled.size(-1) != config_.pooled_projection_dim)
      throw InputError("the text encoders' pooled embeddings are " + str(c.pooled.size(-1)) +
                       " wide, the transformer in '" + folder_ + "' takes " + str(config_.pooled_projection_dim) +
                       " (pooled_projection_dim)");
    compat::AutocastScope autocast(settings_.bf16 && x.is_cuda());
    // diffusers' SD3 takes the timestep on the 0..1000 scale: SimpleTuner passes 1000·σ.
    auto out =
        model_->forward(x, c.text.to(x.device()), c.pooled.to(x.device()), sigma * 1000.0, tap ? settings_.tap : -1);
    return {out.prediction.to(x.scalar_type()), tap ? out.tapped.to(torch::kFloat32) : torch::Tensor()};
  }

  int64_t tap_width() const override { return settings_.tap >= 0 ? config_.inner_dim() : 0; }
  std::string describe() const override {
    return "sd3 SD3Transformer2DModel from '" + folder_ + "' (" + str(config_.num_layers) + " joint blocks, width " +
           str(config_.inner_dim()) + (config_.dual_attention_layers.empty() ? "" : ", SD3.5 dual attention") +
           "; timestep 1000·σ, pooled CLIP-L + CLIP-G)" +
           (settings_.tap >= 0 ? ", REPA on joint block " + str(settings_.tap) : "");
  }
  void load_weights(const std::string& path) override {
    throw InputError("'" + path + "': an sd3 run takes its weights from pretrained_model_name_or_path's transformer/");
  }

 private:
  std::string folder_;
  FlowBackboneSettings settings_;
  models::SD3TransformerConfig config_;
  models::SD3Transformer model_{nullptr};
};

// Flux and Chroma take 2x2-packed latents through a patch_size 1 transformer, double then single blocks: the same
// checks of the pipeline's transformer/ before its weights load.
template <typename Model, typename Config>
Model load_packed_transformer(const std::string& folder, const Config& config, const BackboneShape& shape,
                              const FlowBackboneSettings& settings, const std::string& family) {
  const std::string title = family == "flux" ? "Flux" : "Chroma";
  if (config.patch_size != 1)
    throw InputError("the " + title + " transformer in '" + folder + "' has patch_size " + str(config.patch_size) +
                     "; " + title + "Pipeline packs 2x2 latent patches for a patch_size 1 transformer");
  check_latent_channels(folder, config.in_channels, shape.in_channels, 4);
  check_text_width(folder, config.joint_attention_dim, shape.text_width, family);
  models::check_tap_index(settings.tap, config.num_layers, config.num_single_layers,
                          "the " + title + " transformer in '" + folder + "'");
  Model model(config);
  model->load_weights(folder);
  model->gradient_checkpointing = settings.checkpointing;
  return model;
}

// flux_guidance_mode / _value / _min / _max as SimpleTuner draws the embedded guidance of each training sample.
struct FluxGuidance {
  bool random_range = false;
  double value = 1.0, min = 0.0, max = 4.0;
  double validation = 1.0;  // samples: the pipeline's guidance_scale (validation_guidance)
  bool real_cfg = false;    // samples: true CFG only when validation_guidance_real > 1

  static FluxGuidance from_config(const nlohmann::json& config) {
    FluxGuidance g;
    const std::string mode = text_or(config, "flux_guidance_mode", "constant");
    if (mode != "constant" && mode != "random-range")
      throw InputError("flux_guidance_mode '" + mode + "' is unknown (constant, random-range)");
    g.random_range = mode == "random-range";
    g.value = number_or(config, "flux_guidance_value", 1.0);
    g.min = number_or(config, "flux_guidance_min", 0.0);
    g.max = number_or(config, "flux_guidance_max", 4.0);
    g.validation = number_or(config, "validation_guidance", 1.0);
    g.real_cfg = number_or(config, "validation_guidance_real", 1.0) > 1.0;
    for (double v : {g.value, g.min, g.max, g.validation})
      if (!std::isfinite(v)) throw InputError("flux_guidance_value/_min/_max and validation_guidance must be finite");
    return g;
  }

  // Training: constant value, or uniform in [min, max) per sample (drawn from the run's generator, so resume
  // reproduces it). Samples: validation_guidance.
  torch::Tensor draw(int64_t n, bool training, const torch::Device& device) const {
    if (!training) return torch::full({n}, validation, torch::TensorOptions().device(device));
    if (!random_range) return torch::full({n}, value, torch::TensorOptions().device(device));
    return (torch::rand({n}) * (max - min) + min).to(device);
  }
};

class FluxBackbone : public TextBackbone {
 public:
  FluxBackbone(const nlohmann::json& config, const FamilyPipeline& pipeline, const BackboneShape& shape)
      : folder_(pipeline.denoiser_folder),
        settings_(FlowBackboneSettings::from_config(config)),
        guidance_(FluxGuidance::from_config(config)),
        masked_(flag_or(config, "flux_attention_masked_training", false)) {
    config_ = models::FluxTransformerConfig::from_json(family_transformer_config(folder_, "flux"));
    model_ = load_packed_transformer<models::FluxTransformer>(folder_, config_, shape, settings_, "flux");
  }

  torch::nn::Module& module() override { return *model_; }

  // Samples: with validation_guidance_real ≤ 1 SimpleTuner's Flux validation has no true CFG (only the embedded
  // guidance), so the negative rows the sampler adds repeat their prompts and the guided result is the prompt's.
  BackboneOutput forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& labels,
                         bool tap) override {
    auto rows = labels.to(torch::kLong);
    const auto n = rows.size(0);
    if (!guidance_.real_cfg && n % 2 == 0 && n > 0) {
      const auto first = rows.narrow(0, 0, n / 2), second = rows.narrow(0, n / 2, n / 2);
      if (second.eq(null_label()).all().item<bool>() && first.ne(null_label()).all().item<bool>())
        rows = torch::cat({first, first});
    }
    return TextBackbone::forward(x, t, rows, tap);
  }

  BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c,
                                     bool tap) override {
    if (!c.text.defined() || !c.pooled.defined())
      throw Error("Flux's transformer needs the T5 states and the pooled CLIP embedding in every step");
    if (c.pooled.size(-1) != config_.pooled_projection_dim)
      throw InputError("the CLIP text encoder's pooled embedding is " + str(c.pooled.size(-1)) +
                       " wide, the transformer in '" + folder_ + "' takes " + str(config_.pooled_projection_dim) +
                       " (pooled_projection_dim)");
    const auto h = x.size(2), w = x.size(3), b = x.size(0);
    const auto text = c.text.to(x.device());
    torch::Tensor mask;
    if (masked_) {
      if (!c.text_mask.defined())
        throw Error("flux_attention_masked_training needs the T5 attention mask in the text cache");
      mask = torch::cat(
          {c.text_mask.to(x.device(), torch::kBool),
           torch::ones({b, (h / 2) * (w / 2)}, torch::TensorOptions().dtype(torch::kBool).device(x.device()))},
          1);
    }
    const auto guidance =
        config_.guidance_embeds ? guidance_.draw(b, model_->is_training(), x.device()) : torch::Tensor();
    compat::AutocastScope autocast(settings_.bf16 && x.is_cuda());
    // diffusers' Flux takes σ (it scales by 1000 inside), as SimpleTuner passes timesteps / 1000.
    auto out =
        model_->forward(flux_pack_latents(x), text, c.pooled.to(x.device()), sigma, flux_image_ids(h, w, x.device()),
                        torch::zeros({text.size(1), 3}, torch::TensorOptions().device(x.device())), guidance,
                        tap ? settings_.tap : -1, mask);
    return {flux_unpack_latents(out.prediction.to(x.scalar_type()), x.size(1), h, w),
            tap ? out.tapped.to(torch::kFloat32) : torch::Tensor()};
  }

  int64_t tap_width() const override { return settings_.tap >= 0 ? config_.inner_dim() : 0; }
  std::string describe() const override {
    std::string guidance = !config_.guidance_embeds ? "schnell: no guidance embedding"
                           : guidance_.random_range ? "dev: guidance uniform in [" + std::to_string(guidance_.min) +
                                                          ", " + std::to_string(guidance_.max) + ")"
                                                    : "dev: guidance " + std::to_string(guidance_.value);
    return "flux FluxTransformer2DModel from '" + folder_ + "' (" + str(config_.num_layers) + " double + " +
           str(config_.num_single_layers) + " single blocks, width " + str(config_.inner_dim()) + "; " + guidance +
           (masked_ ? "; text padding masked" : "") + ")" +
           (settings_.tap >= 0 ? ", REPA on block " + str(settings_.tap) : "");
  }
  void load_weights(const std::string& path) override {
    throw InputError("'" + path + "': a flux run takes its weights from pretrained_model_name_or_path's transformer/");
  }

 private:
  std::string folder_;
  FlowBackboneSettings settings_;
  FluxGuidance guidance_;
  bool masked_;
  models::FluxTransformerConfig config_;
  models::FluxTransformer model_{nullptr};
};

class ChromaBackbone : public TextBackbone {
 public:
  ChromaBackbone(const nlohmann::json& config, const FamilyPipeline& pipeline, const BackboneShape& shape)
      : folder_(pipeline.denoiser_folder), settings_(FlowBackboneSettings::from_config(config)) {
    config_ = models::ChromaTransformerConfig::from_json(family_transformer_config(folder_, "chroma"));
    model_ = load_packed_transformer<models::ChromaTransformer>(folder_, config_, shape, settings_, "chroma");
  }

  torch::nn::Module& module() override { return *model_; }

  BackboneOutput forward_conditioned(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c,
                                     bool tap) override {
    if (!c.text.defined() || !c.text_mask.defined())
      throw Error("Chroma's transformer needs the T5 states and their attention mask in every step");
    const auto h = x.size(2), w = x.size(3), b = x.size(0);
    const auto text = c.text.to(x.device());
    // SimpleTuner extends the text mask over the image tokens, which are always kept.
    const auto mask =
        torch::cat({c.text_mask.to(x.device(), torch::kBool),
                    torch::ones({b, (h / 2) * (w / 2)}, torch::TensorOptions().dtype(torch::kBool).device(x.device()))},
                   1);
    compat::AutocastScope autocast(settings_.bf16 && x.is_cuda());
    auto out = model_->forward(flux_pack_latents(x), text, sigma, flux_image_ids(h, w, x.device()),
                               torch::zeros({text.size(1), 3}, torch::TensorOptions().device(x.device())), mask,
                               tap ? settings_.tap : -1);
    return {flux_unpack_latents(out.prediction.to(x.scalar_type()), x.size(1), h, w),
            tap ? out.tapped.to(torch::kFloat32) : torch::Tensor()};
  }

  int64_t tap_width() const override { return settings_.tap >= 0 ? config_.inner_dim() : 0; }
  std::string describe() const override {
    return "chroma ChromaTransformer2DModel from '" + folder_ + "' (" + str(config_.num_layers) + " double + " +
           str(config_.num_single_layers) + " single blocks, width " + str(config_.inner_dim()) +
           "; modulations from the distilled-guidance approximator, T5 padding masked)" +
           (settings_.tap >= 0 ? ", REPA on block " + str(settings_.tap) : "");
  }
  void load_weights(const std::string& path) override {
    throw InputError("'" + path +
                     "': a chroma run takes its weights from pretrained_model_name_or_path's transformer/");
  }

 private:
  std::string folder_;
  FlowBackboneSettings settings_;
  models::ChromaTransformerConfig config_;
  models::ChromaTransformer model_{nullptr};
};

}  // namespace

std::unique_ptr<Backbone> make_sd3_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                            const BackboneShape& shape) {
  return std::make_unique<Sd3Backbone>(config, pipeline, shape);
}

std::unique_ptr<Backbone> make_flux_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                             const BackboneShape& shape) {
  return std::make_unique<FluxBackbone>(config, pipeline, shape);
}

std::unique_ptr<Backbone> make_chroma_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                               const BackboneShape& shape) {
  return std::make_unique<ChromaBackbone>(config, pipeline, shape);
}

torch::Tensor family_training_sigmas(const nlohmann::json& config, const torch::Tensor& sigmas) {
  if (text_or(config, "model_family", "") != "chroma") return sigmas;
  for (const char* key : {"flux_fast_schedule", "flow_use_beta_schedule", "flow_use_uniform_schedule"})
    if (flag_or(config, key, false)) return sigmas;
  return torch::where(sigmas < 0.5, sigmas.square(), 1 - (1 - sigmas).square());
}

torch::Tensor family_sampling_sigmas(const nlohmann::json& config, int64_t latent_height, int64_t latent_width,
                                     int64_t num_steps) {
  const std::string family = text_or(config, "model_family", "");
  if (family != "sd3" && family != "flux" && family != "chroma") return {};
  if (text_or(studio_settings(config), "sampler", "euler") != "euler") return {};
  const auto pipeline = config::resolve_family_pipeline(config);
  auto scheduler = diffusion::FlowSchedulerConfig::from_json(pipeline.scheduler);
  const std::string chosen = text_or(config, "validation_noise_scheduler", "");
  if (family != "flux" && (chosen == "flow_matching" || chosen == "flow_match_euler" || chosen == "euler"))
    scheduler.shift = number_or(config, "flow_schedule_shift", 3.0);
  if (family == "sd3") return diffusion::flow_inference_sigmas(scheduler, num_steps);
  std::vector<double> custom;
  for (int64_t i = 0; i < num_steps; ++i)
    custom.push_back(num_steps == 1 ? 1.0 : 1.0 + (1.0 / num_steps - 1.0) * i / (num_steps - 1));
  const double mu = diffusion::flow_shift_mu((latent_height / 2) * (latent_width / 2), scheduler.dynamic);
  return diffusion::flow_inference_sigmas(scheduler, num_steps, custom, mu);
}

}  // namespace repa::train
