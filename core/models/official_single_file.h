// Writing diffusers-named weights back under a family's official single-file names (the same name tables the readers
// in flux_official_names.h and sd3_official_names.h apply, run backwards): what `repa-train merge` writes beside the
// merged diffusers folder, so that tools that load the official layout (ComfyUI, the authors' code) take the merged
// model too. Flux.1, Chroma, Flux.2, SD3 / SD3.5 and PixArt-α / PixArt-Σ (pixart_official_names.h).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace repa::models {

// The family whose official layout the diffusers names belong to ("flux", "chroma", "flux2", "sd3", "pixart"), or ""
// when there is no writer for them (the UNets, which ldm_single_file.h writes from their folder, Sana and AuraFlow).
std::string official_single_file_family(const std::vector<std::string>& diffusers_names);

// The family of diffusers names whose official single-file names are read but not written ("Sana", "AuraFlow"), or
// "" for any other names: what `repa-train merge` names when it writes the diffusers weights only.
std::string unwritten_single_file_family(const std::vector<std::string>& diffusers_names);

// Diffusers names → the official ones (no "model.diffusion_model." prefix, as Black Forest Labs' and lodestones'
// files; SD3's joint_blocks.*; PixArt's blocks.*): fused qkv, PixArt's cross-attention kv_linear and single-block
// linear1 concatenated, the (scale, shift) halves of the output modulation (and SD3's last context block) swapped back
// to (shift, scale). PixArt's fixed pos_embed table and null-caption y_embedder.y_embedding are not written (the
// diffusers weights do not hold them). InputError naming `origin` and every tensor the table lacks or does not know.
std::map<std::string, torch::Tensor> diffusers_to_official(const std::string& family,
                                                           const std::map<std::string, torch::Tensor>& tensors,
                                                           const std::string& origin);

}  // namespace repa::models
