// Merging a LoRA file into base weights by tensor name, without building the model: for every adapted module M,
// M.weight becomes W + (alpha / r) B A (DoRA: m / ||W + ΔW||_row · (W + ΔW)), in the base tensor's dtype; every
// other tensor is copied. What `repa-train merge` writes.
#pragma once
#include <string>

#include "core/adapters/lora_targets.h"
#include "core/io/safetensors.h"

namespace repa::adapters {

struct MergeResult {
  io::NamedTensors tensors;  // the base's names, merged where adapted
  int64_t merged_modules = 0;
  std::string component;  // "unet" / "transformer": the file's prefix
};

// base: a .safetensors file, a sharded index, or a diffusers component folder (diffusion_pytorch_model.*).
// The component prefix is read from the LoRA file's names (unet., lora_unet_, transformer., diffusion_model.).
// InputError naming the file and tensor for a LoRA module the base has no weight for, or shapes that differ.
MergeResult merge_lora_file(const std::string& base, const std::string& lora_path);

// The weights file inside a diffusers component folder, or `base` itself.
std::string base_weights_path(const std::string& base);

}  // namespace repa::adapters
