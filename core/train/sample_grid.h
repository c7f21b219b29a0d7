// Sample grids: a fixed set of noises and classes (seeded, so grids from different steps compare cell by
// cell) run through the configured sampler, decoded to pixels. Used by the trainer every
// validation_step_interval steps and by `repa-train sample` on a saved checkpoint.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/diffusion/objective.h"
#include "core/diffusion/samplers.h"
#include "core/train/backbone.h"
#include "core/train/latent_space.h"

namespace repa::train {

struct SampleGrid {
  torch::Tensor pixels;         // (N,3,H,W) in [-1,1]
  std::vector<int64_t> labels;  // per cell; the null label when unconditional
  diffusion::SamplerConfig sampler;
};

// Draws the grid with `backbone` as it is (the caller swaps in EMA weights and sets eval mode). The global
// CPU generator is left as it was, so drawing samples never changes a run's training stream.
SampleGrid draw_sample_grid(Backbone& backbone, LatentSpace& latent_space, const diffusion::Objective& objective,
                            const nlohmann::json& config, int64_t num_classes, const torch::Device& device);

// Writes `grid` as a PNG (8 columns).
void write_sample_grid(const SampleGrid& grid, const std::string& path);

// `repa-train sample`: the grid of a saved checkpoint (EMA weights when it has them). `overrides` may set
// validation_num_inference_steps, validation_guidance, studio.sampler and seed. Returns the PNG's path.
std::string sample_checkpoint(const std::string& checkpoint_dir, const std::string& out_path,
                              const nlohmann::json& overrides);

}  // namespace repa::train
