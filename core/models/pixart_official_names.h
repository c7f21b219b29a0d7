// The official PixArt-α / PixArt-Σ checkpoint names (the PixArt-alpha and PixArt-sigma repositories' PixArt /
// PixArtMS modules) against diffusers' PixArtTransformer2DModel names, as diffusers'
// convert_pixart_sigma_to_diffusers.py maps them: the fused self-attention qkv cut into to_q/to_k/to_v and the
// cross-attention kv_linear into to_k/to_v. One table, read in both directions: a single-file official checkpoint
// loads into the same model as a diffusers folder, and `repa-train merge` writes merged weights back under these names
// (official_single_file.h).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/official_names.h"
#include "core/models/pixart_transformer.h"

namespace repa::models {

// The PixArt name table (official ↔ diffusers) for the weights `shape` describes: the micro-conditioning embedders
// (csize_embedder / ar_embedder, PixArt-α 1024) when the weights have them. The fixed sin-cos table (pos_embed) and the
// null-caption embedding (y_embedder.y_embedding, the caption of dropped-caption training) have no diffusers
// counterpart and are not in it.
NameTable pixart_name_table(const NameShape& shape);

// Whether a checkpoint's names are the official ones (it has x_embedder.proj.weight, with or without the
// "model.diffusion_model." prefix).
bool has_official_pixart_names(const std::vector<std::string>& names);

// Official names → diffusers names by the table; pos_embed and y_embedder.y_embedding are left out. InputError naming
// `origin` and a missing tensor, a fused tensor of the wrong row count, or every tensor the table does not know.
std::map<std::string, torch::Tensor> pixart_official_to_diffusers(const std::map<std::string, torch::Tensor>& official,
                                                                  const std::string& origin);

// Loads a diffusers folder, a diffusers-named safetensors file, or a single safetensors file under the official
// names; an InputError names the file and what does not fit (every missing, unexpected and mis-shaped tensor of a
// diffusers-named file; for an official one, what the table cannot read, then what the model lacks or cannot take).
void load_pixart_weights(PixArtTransformer& model, const std::string& path);

}  // namespace repa::models
