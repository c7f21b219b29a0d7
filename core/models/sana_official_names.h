// The official Sana checkpoint names (NVlabs/Sana's SanaMS modules, also under ComfyUI's "model.diffusion_model."
// prefix) mapped onto diffusers' SanaTransformer2DModel names, as diffusers' convert_sana_to_diffusers.py and its
// single-file loader map them: fused qkv / kv_linear cut into to_q/to_k/to_v, the MBConv feed-forward's
// inverted_conv / depth_conv / point_conv renamed, and the timestep embedder placed as the model's time_embed
// expects (inside emb. without guidance_embeds, beside guidance_embedder = cfg_embedder with it).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/sana_transformer.h"

namespace repa::models {

bool has_official_sana_names(const std::vector<std::string>& names);  // x_embedder.proj.weight, with or without prefix

// Official names → diffusers names for a model with or without guidance_embeds. The fixed pos_embed table and the
// null-caption y_embedder.y_embedding are left out; unknown names are kept, so loading names them as unexpected.
std::map<std::string, torch::Tensor> sana_official_to_diffusers(const std::map<std::string, torch::Tensor>& official,
                                                                bool guidance_embeds);

// Loads a diffusers folder or file, or a single safetensors file under the official names; every missing,
// unexpected and mis-shaped tensor is named in one InputError with the file.
void load_sana_weights(SanaTransformer& model, const std::string& path);

}  // namespace repa::models
