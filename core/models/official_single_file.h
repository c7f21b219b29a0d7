// Writing diffusers-named weights back under a family's official single-file names (the same name tables the readers
// in flux_official_names.h and sd3_official_names.h apply, run backwards): what `repa-train merge` writes beside the
// merged diffusers folder, so that tools that load the official layout (ComfyUI, the authors' code) take the merged
// model too. Flux.1, Chroma, Flux.2 and SD3 / SD3.5 so far.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace repa::models {

// The family whose official layout the diffusers names belong to ("flux", "chroma", "flux2", "sd3"), or "" when
// there is no writer for them (the UNets, PixArt, Sana and AuraFlow for now).
std::string official_single_file_family(const std::vector<std::string>& diffusers_names);

// Diffusers names → the official ones (no "model.diffusion_model." prefix, as Black Forest Labs' and lodestones'
// files; SD3's joint_blocks.*): fused qkv and single-block linear1 concatenated, the (scale, shift) halves of the
// output modulation (and SD3's last context block) swapped back to (shift, scale). InputError naming `origin` and every
// tensor the table lacks or does not know.
std::map<std::string, torch::Tensor> diffusers_to_official(const std::string& family,
                                                           const std::map<std::string, torch::Tensor>& tensors,
                                                           const std::string& origin);

}  // namespace repa::models
