// The per-step and per-sample conditioning of the text-to-image family runs, beyond the caption's embedding:
// SDXL's time_ids per image (from the image's size and its centre crop, as SimpleTuner computes them from its
// intermediary size and crop coordinates), and the validation prompts' table the samples are drawn with.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config/family_pipeline.h"
#include "core/data/bucketed_images.h"
#include "core/data/image_folder.h"
#include "core/diffusion/objective.h"
#include "core/text/text_conditioning.h"
#include "core/train/backbone.h"

namespace repa::train {

class CaptionConditioning;

// A model_family run's set-up, shared by the trainer and `repa-train cache`: makes the demo's tiny pipeline when
// asked ("@demo-t2i"), resolves the pipeline folder and writes the family's settings into `config`. nullopt (and
// `config` untouched) for runs without a pipeline family.
std::optional<repa::config::FamilyPipeline> prepare_family_run(nlohmann::json& config);

// The objective a family run trains and samples with: studio.objective on the pipeline scheduler's betas (SD 2.x
// and rescale_betas_zero_snr: zero terminal SNR), or the flow path.
diffusion::Objective family_objective(const nlohmann::json& config, const repa::config::FamilyPipeline& pipeline);

// The prompt table as checkpoint tensors ("text", "pooled", "mask", "time_ids" where defined), and back.
std::vector<std::pair<std::string, torch::Tensor>> prompt_table_tensors(const Conditioning& table);
Conditioning prompt_table_from(const std::map<std::string, torch::Tensor>& tensors);

// What a family run caches beside the captions: its validation prompts and the negative prompt.
std::vector<std::string> family_extra_prompts(const nlohmann::json& config,
                                              const std::vector<std::vector<std::string>>& captions);

// (N, 6) fp32 time_ids of every image of `folder` at `resolution`: resized height and width (the size the crop is
// cut from), crop top and left, target height and width. Reads only the image headers.
torch::Tensor sdxl_time_ids(const data::ImageFolder& folder, int64_t resolution);

// (N, 6) fp32 time_ids of aspect-bucketed images, each from its geometry (data::sdxl_time_ids).
torch::Tensor sdxl_time_ids(const data::BucketedImages& images);

// The time_ids of a generated sample: (resolution, resolution, 0, 0, resolution, resolution).
torch::Tensor default_time_ids(int64_t resolution, int64_t rows);

// Stacked cached embeddings as the backbones take them.
Conditioning to_conditioning(const text::TextEmbedding& embedding);

// The prompts samples are drawn with: validation_prompt (one prompt, or a JSON list of prompts) and
// studio.validation_prompts; without any, up to four distinct captions of the dataset (`captions`).
std::vector<std::string> validation_prompts(const nlohmann::json& config,
                                            const std::vector<std::vector<std::string>>& captions);
// validation_negative_prompt (SimpleTuner's default "blurry, cropped, ugly").
std::string validation_negative_prompt(const nlohmann::json& config);

// Rows 0..P-1 the prompts, row P the negative prompt, each from the run's text cache; time_ids as a sample's
// when `with_time_ids`.
Conditioning prompt_table(const CaptionConditioning& captions, const std::vector<std::string>& prompts,
                          const std::string& negative, int64_t resolution, bool with_time_ids);

}  // namespace repa::train
