// Stable Diffusion single files in the original LDM/SGM names (what A1111 and ComfyUI load) against the diffusers
// pipeline's names, one table per part generated from the model config's block structure as diffusers'
// convert_ldm_unet_checkpoint / convert_ldm_vae_checkpoint / convert_ldm_clip_checkpoint /
// convert_open_clip_checkpoint map them, and applied in both directions:
//   UNet  model.diffusion_model.{input_blocks,middle_block,output_blocks,time_embed,label_emb,out}.*
//   VAE   first_stage_model.{encoder,decoder}.{down,mid,up}.*, quant_conv, post_quant_conv
//   text  sd1x  cond_stage_model.transformer.text_model.*            (CLIP-L, the transformers names)
//         sd2x  cond_stage_model.model.*                              (OpenCLIP-H: fused in_proj)
//         sdxl  conditioner.embedders.0.transformer.text_model.*      (CLIP-L)
//               conditioner.embedders.1.model.*                       (OpenCLIP-bigG: fused in_proj, text_projection)
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/models/official_names.h"

namespace repa::models {

using TensorMap = std::map<std::string, torch::Tensor>;

// The block structure the UNet table is generated from.
struct LdmUNetLayout {
  std::vector<int64_t> channels;            // per down block
  std::vector<bool> attention;              // per down block: a cross-attention block
  std::vector<int64_t> transformer_layers;  // per down block
  int64_t layers_per_block = 2;
  bool text_time = false;  // SDXL's add_embedding (label_emb)
  // From a diffusers UNet2DConditionModel config.json; InputError for layouts the LDM names cannot express.
  static LdmUNetLayout from_config(const nlohmann::json& config);
};

// Tables with the component prefixes left out (official "input_blocks.…", diffusers "down_blocks.…").
NameTable ldm_unet_table(const LdmUNetLayout& layout, const NameShape& shape);
NameTable ldm_vae_table(int64_t blocks, int64_t layers_per_block, const NameShape& shape);
NameTable ldm_clip_table(int64_t layers, bool projection);  // CLIP-L: the same names on both sides
NameTable ldm_open_clip_table(int64_t layers, int64_t width, bool projection);

// A pipeline's parts in diffusers names: components "unet", "vae", "text_encoder", "text_encoder_2", each with its
// config.json; "scheduler" has a config only.
struct SdPipelineParts {
  std::string family;
  std::map<std::string, TensorMap> weights;
  std::map<std::string, nlohmann::json> configs;
};

// Reads an LDM/SGM single file of `family` (sd1x, sd2x, sdxl). The configs come from the file's repa.* metadata
// when this project wrote it, else from the family's known configs (SD 1.5, SD 2.1 768-v, SDXL base) with the
// widths, depths and block structure inferred from the tensor shapes. Tensors outside the model parts (model_ema.*,
// the LDM scheduler's buffers, position_ids, logit_scale; SD 2.x's unused last text layer and projection, as
// diffusers drops them) are skipped; InputError naming the file for another family's file and for each missing,
// mis-shaped or unknown tensor of a part.
SdPipelineParts read_ldm_single_file(const std::string& path, const std::string& family);

// The parts under the LDM/SGM names (plus the configs as repa.* metadata). A part that is absent is left out (a
// UNet alone writes model.diffusion_model.* only).
std::map<std::string, torch::Tensor> ldm_single_file_tensors(const SdPipelineParts& parts, const std::string& origin);
std::map<std::string, std::string> ldm_single_file_metadata(const SdPipelineParts& parts);

}  // namespace repa::models
