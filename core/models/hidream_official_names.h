// HiDream-I1 single files: the official tensor names are diffusers' HiDreamImageTransformer2DModel names, in ComfyUI's
// files under a "model.diffusion_model." prefix, which diffusers' convert_hidream_transformer_to_diffusers strips.
#pragma once
#include <string>

#include "core/models/hidream_transformer.h"

namespace repa::models {

// Loads a diffusers folder, a shard index or one safetensors file with or without the prefix; every missing,
// unexpected and mis-shaped tensor is named in one InputError with the file.
void load_hidream_weights(HiDreamTransformer& model, const std::string& path);

}  // namespace repa::models
