// The flow-matching families' denoisers (backbone_flow_families.cpp): SD3 / SD3.5's SD3Transformer2DModel, Flux.1's
// FluxTransformer2DModel (dev with its guidance embedding, schnell without) and Chroma's ChromaTransformer2DModel,
// each from the pipeline's transformer/ with its weights, REPA on crepa_block_index.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/train/family_backbones.h"

namespace repa::train {

std::unique_ptr<Backbone> make_sd3_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                            const BackboneShape& shape);
std::unique_ptr<Backbone> make_flux_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                             const BackboneShape& shape);
std::unique_ptr<Backbone> make_chroma_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                               const BackboneShape& shape);

// diffusers' Flux/Chroma pipelines' _pack_latents: (B, C, H, W) → (B, H/2 · W/2, 4·C), each token a 2×2 patch with
// channels outermost; InputError for an odd grid. unpack is its inverse; image ids are (H/2 · W/2, 3) rows
// (0, row, column), text ids zeros.
torch::Tensor flux_pack_latents(const torch::Tensor& x);
torch::Tensor flux_unpack_latents(const torch::Tensor& tokens, int64_t channels, int64_t height, int64_t width);
torch::Tensor flux_image_ids(int64_t height, int64_t width, const torch::Device& device);

// The training sigmas of model_family `config` from the flow sampler's: Chroma's schedule squashes them toward the
// ends (σ² below ½, 1 − (1 − σ)² above) unless flux_fast_schedule, flow_use_beta_schedule or
// flow_use_uniform_schedule is set, as SimpleTuner's Chroma prepare_batch does; other families keep them.
torch::Tensor family_training_sigmas(const nlohmann::json& config, const torch::Tensor& sigmas);

// The validation sigmas (num_steps + 1, fp64, last 0) SimpleTuner's pipelines step through for a flow family run
// sampled with studio.sampler euler on a latent_height × latent_width grid: the pipeline folder's
// FlowMatchEulerDiscreteScheduler (validation_noise_scheduler flow_matching: its static shift replaced by
// flow_schedule_shift, except Flux's dynamic one); Flux and Chroma pass linspace(1, 1/n, n) and μ of the packed
// token count, as diffusers' pipelines do. Undefined for other families and samplers (equal steps).
torch::Tensor family_sampling_sigmas(const nlohmann::json& config, int64_t latent_height, int64_t latent_width,
                                     int64_t num_steps);

}  // namespace repa::train
