// Black Forest Labs' tensor names for Flux.1 (and Chroma) single files (flux1-dev.safetensors and the like, optionally
// under model.diffusion_model.), read as diffusers' FluxTransformer2DModel names exactly as diffusers'
// convert_flux_transformer_checkpoint_to_diffusers maps them: fused qkv split in three, a single block's linear1
// split into q, k, v and the MLP input, the output modulation's (shift, scale) swapped to (scale, shift).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/official_names.h"

namespace repa::models {

// The name tables (official ↔ diffusers) of Flux.1, Chroma and Flux.2, generated for the weights `shape` describes:
// what both the readers below and the single-file writer (official_single_file.h) apply.
NameTable flux_name_table(const NameShape& shape);
NameTable chroma_name_table(const NameShape& shape);
NameTable flux2_name_table(const NameShape& shape);

// True when the names are BFL's (a double_blocks.* or single_blocks.* tensor, with or without the prefix).
bool is_flux_official_naming(const std::vector<std::string>& names);

// BFL-named tensors → diffusers-named ones. InputError naming `origin` and the tensor for a missing or mis-shaped
// fused tensor, and naming every tensor the table does not know.
std::map<std::string, torch::Tensor> flux_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                const std::string& origin);

// Chroma's single files (lodestones' Chroma1-HD and the like: the Flux block names without modulation weights, plus
// distilled_guidance_layer.{in_proj,layers.N.{in_layer,out_layer},norms.N.scale,out_proj}), as diffusers'
// convert_chroma_transformer_checkpoint_to_diffusers maps them.
std::map<std::string, torch::Tensor> chroma_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                  const std::string& origin);

// Flux.2 single files (flux2-dev.safetensors: the Flux block names, shared double_stream_modulation_img/_txt.lin and
// single_stream_modulation.lin, no biases), as diffusers' convert_flux2_transformer_checkpoint_to_diffusers maps
// them; the single blocks' fused linear1 / linear2 are diffusers' to_qkv_mlp_proj / to_out as they are.
std::map<std::string, torch::Tensor> flux2_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& origin);

}  // namespace repa::models
