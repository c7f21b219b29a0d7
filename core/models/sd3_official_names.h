// Stability AI's tensor names for SD3 / SD3.5 single files (sd3.5_large.safetensors and the like, under
// model.diffusion_model.: joint_blocks.N.{x_block,context_block}.*), read as diffusers' SD3Transformer2DModel names
// exactly as diffusers' convert_sd3_transformer_checkpoint_to_diffusers maps them: fused qkv split in three, the
// last block's context modulation and the output modulation (shift, scale) swapped to (scale, shift).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/official_names.h"

namespace repa::models {

// The SD3 / SD3.5 name table (official ↔ diffusers) for the weights `shape` describes; the reader below and the
// single-file writer (official_single_file.h) both apply it.
NameTable sd3_name_table(const NameShape& shape);

// True when the names are the official ones (a joint_blocks.* tensor, with or without the prefix).
bool is_sd3_official_naming(const std::vector<std::string>& names);

// Official tensors → diffusers-named ones; InputError naming `origin` and each missing, mis-shaped or unknown tensor.
// Text-encoder and autoencoder tensors of an all-in-one file (text_encoders.*, first_stage_model.*) are skipped.
std::map<std::string, torch::Tensor> sd3_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                               const std::string& origin);

}  // namespace repa::models
