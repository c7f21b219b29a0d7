// SD 1.x / 2.x / XL diffusers pipeline folders against the LDM/SGM single files of ldm_single_file.h: reading a
// folder's parts, writing parts as a folder (what a single file given as pretrained_model_name_or_path is converted
// into, once, in the model cache), and writing a folder or a fine-tuned / merged UNet as one single file.
#pragma once
#include <map>
#include <string>

#include "core/models/ldm_single_file.h"

namespace repa::models {

// A diffusers pipeline folder's parts (unet/, vae/, text_encoder*/, scheduler/); `unet_folder`, when not empty,
// replaces the pipeline's unet/ (a fine-tuned or merged UNet). Components the folder lacks are left out.
SdPipelineParts read_sd_pipeline_folder(const std::string& folder, const std::string& family,
                                        const std::string& unet_folder = "");

// Writes `parts` as a diffusers folder (model_index.json, unet/, vae/, text_encoder*/, scheduler/), tokenizers
// copied from `tokenizers` (component → folder).
void write_sd_pipeline_folder(const SdPipelineParts& parts, const std::string& folder,
                              const std::map<std::string, std::string>& tokenizers);

// pipeline folder (+ optional UNet override) → one .safetensors single file in the LDM/SGM names.
void write_ldm_single_file(const std::string& pipeline_folder, const std::string& family, const std::string& out,
                           const std::string& unet_folder = "");

// The SD family whose UNet the diffusers names are ("sd1x", "sd2x", "sdxl"), from the UNet config beside them
// when given, else "" (the names alone do not tell SD 1.x from 2.x).
std::string sd_family_of_unet_config(const nlohmann::json& unet_config);

// The SD family of a diffusers UNet folder (from its config.json), "" for anything else.
std::string sd_unet_folder_family(const std::string& folder);

// `unet` (diffusers names, with the config.json of `unet_folder`) as an LDM/SGM single file: a full checkpoint with
// the VAE and text encoders of the pipeline that holds `unet_folder` (its parent, with model_index.json), else the
// UNet alone (model.diffusion_model.*, what ComfyUI's diffusion-model loader takes). Returns the tensor count.
std::size_t write_sd_unet_single_file(const std::string& unet_folder, const std::string& family, const TensorMap& unet,
                                      const std::string& out);

// Installs the single-file converter config/sd_single_file.h calls: a single file as pretrained_model_name_or_path
// becomes a diffusers folder in the model cache, converted once. The worker calls it at start.
void install_ldm_single_file_converter();

}  // namespace repa::models
