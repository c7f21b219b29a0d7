// The official PixArt-α / PixArt-Σ checkpoint names (the PixArt-alpha and PixArt-sigma repositories' PixArt /
// PixArtMS modules) mapped onto diffusers' PixArtTransformer2DModel names, as diffusers'
// convert_pixart_sigma_to_diffusers.py maps them: the fused self-attention qkv is cut into to_q/to_k/to_v and the
// cross-attention kv_linear into to_k/to_v. One table, so a single-file official checkpoint loads into the same
// model as a diffusers folder.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/pixart_transformer.h"

namespace repa::models {

// Whether a checkpoint's names are the official ones (it has x_embedder.proj.weight).
bool has_official_pixart_names(const std::vector<std::string>& names);

// Official names → diffusers names. The fixed sin-cos table (pos_embed) and the null-caption embedding
// (y_embedder.y_embedding, used only to drop captions in training) have no diffusers counterpart and are left out;
// every other name that the table does not know is kept as is, so loading names it as unexpected.
std::map<std::string, torch::Tensor> pixart_official_to_diffusers(const std::map<std::string, torch::Tensor>& official);

// Loads a diffusers folder, a diffusers-named safetensors file, or a single safetensors file under the official
// names; every missing, unexpected and mis-shaped tensor is named in one InputError with the file.
void load_pixart_weights(PixArtTransformer& model, const std::string& path);

}  // namespace repa::models
