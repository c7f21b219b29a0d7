// Alpha-VLLM's tensor names for Lumina-Image 2.0 single files (NextDiT: cap_embedder, t_embedder.mlp, fused
// attention.qkv, attention_norm1/2, adaLN_modulation, final_layer; with or without ComfyUI's
// "model.diffusion_model." prefix) read as diffusers' Lumina2Transformer2DModel names, as diffusers'
// convert_lumina2_to_diffusers maps them. The fused qkv is split by the file's own widths (hidden rows of q, the rest
// halved into k and v), so any head / kv-head layout converts; the unused norm_final.weight is dropped.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/lumina2_transformer.h"

namespace repa::models {

// True when the names are the official ones (cap_embedder.0.weight, with or without the prefix).
bool is_lumina2_official_naming(const std::vector<std::string>& names);

// Official tensors → diffusers-named ones; InputError naming `origin` and each missing, mis-shaped or unknown tensor.
std::map<std::string, torch::Tensor> lumina2_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                   const std::string& origin);

// Loads a diffusers folder or file, or a single safetensors file under the official names; every missing,
// unexpected and mis-shaped tensor is named in one InputError with the file.
void load_lumina2_weights(Lumina2Transformer& model, const std::string& path);

}  // namespace repa::models
