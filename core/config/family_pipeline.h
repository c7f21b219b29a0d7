// A text-to-image family trained from a diffusers pipeline folder (model_index.json, unet/ or transformer/, vae/,
// text_encoder*/, tokenizer*/, scheduler/): where the folder is (a local path or a fetched Hub repository), what
// it lacks, and the run settings the family implies — its text conditioning, its autoencoder and latent scaling,
// its objective — written into the run's config where the user has not set them.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::config {

struct FamilyPipeline {
  std::string family;           // model_family
  std::string folder;           // the pipeline folder
  std::string denoiser_folder;  // folder/unet or folder/transformer
  std::string vae_folder;       // folder/vae, or pretrained_vae_model_name_or_path
  nlohmann::json scheduler;     // scheduler/scheduler_config.json, {} when absent
};

// True when model_family names a family the worker trains from a pipeline folder.
bool is_pipeline_family(const nlohmann::json& config);

// Why the config's pipeline folder cannot be used, before anything loads: pretrained_model_name_or_path empty,
// not a folder here (or a Hub repo not fetched: the `repa-train fetch` command), or a folder missing the
// family's component folders (named). "" when it can; "" as well for configs without a pipeline family.
std::string pipeline_folder_problem(const nlohmann::json& config);

// The pipeline of the config's family; InputError with pipeline_folder_problem's message.
FamilyPipeline resolve_family_pipeline(const nlohmann::json& config);

// The config with the family's run settings filled in under "studio" where absent: architecture "family",
// text_conditioning and text_encoder_path, vae_path with the VAE's scaling_factor / shift_factor, and the
// objective from the family and the scheduler (prediction_type overrides it, as in SimpleTuner).
nlohmann::json with_family_settings(const nlohmann::json& config, const FamilyPipeline& pipeline);

// A Hub repository that holds the family's diffusers pipeline (what the fetch hint names).
std::string example_repository(const std::string& family);

}  // namespace repa::config
