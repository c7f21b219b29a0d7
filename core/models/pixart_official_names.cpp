#include "core/models/pixart_official_names.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/models/dit_weights.h"

namespace repa::models {

namespace {

// Whole-name renames: official → diffusers.
const std::vector<std::pair<std::string, std::string>>& renames() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"x_embedder.proj.", "pos_embed.proj."},
      {"y_embedder.y_proj.fc1.", "caption_projection.linear_1."},
      {"y_embedder.y_proj.fc2.", "caption_projection.linear_2."},
      {"t_embedder.mlp.0.", "adaln_single.emb.timestep_embedder.linear_1."},
      {"t_embedder.mlp.2.", "adaln_single.emb.timestep_embedder.linear_2."},
      {"csize_embedder.mlp.0.", "adaln_single.emb.resolution_embedder.linear_1."},
      {"csize_embedder.mlp.2.", "adaln_single.emb.resolution_embedder.linear_2."},
      {"ar_embedder.mlp.0.", "adaln_single.emb.aspect_ratio_embedder.linear_1."},
      {"ar_embedder.mlp.2.", "adaln_single.emb.aspect_ratio_embedder.linear_2."},
      {"t_block.1.", "adaln_single.linear."},
      {"final_layer.linear.", "proj_out."},
      {"final_layer.scale_shift_table", "scale_shift_table"},
  };
  return table;
}

// Renames inside blocks.N. (→ transformer_blocks.N.).
const std::vector<std::pair<std::string, std::string>>& block_renames() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"scale_shift_table", "scale_shift_table"},
      {"attn.proj.", "attn1.to_out.0."},
      {"cross_attn.q_linear.", "attn2.to_q."},
      {"cross_attn.proj.", "attn2.to_out.0."},
      {"mlp.fc1.", "ff.net.0.proj."},
      {"mlp.fc2.", "ff.net.2."},
  };
  return table;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

bool has_official_pixart_names(const std::vector<std::string>& names) {
  return std::find(names.begin(), names.end(), "x_embedder.proj.weight") != names.end();
}

std::map<std::string, torch::Tensor> pixart_official_to_diffusers(
    const std::map<std::string, torch::Tensor>& official) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, tensor] : official) {
    if (name == "pos_embed" || name == "y_embedder.y_embedding") continue;
    bool mapped = false;
    for (const auto& [from, to] : renames()) {
      if (starts_with(name, from)) {
        out[to + name.substr(from.size())] = tensor;
        mapped = true;
        break;
      }
    }
    if (mapped) continue;
    if (starts_with(name, "blocks.")) {
      const auto dot = name.find('.', 7);
      const std::string block = "transformer_blocks." + name.substr(7, dot - 7) + ".";
      const std::string rest = name.substr(dot + 1);
      // The fused projections: qkv = [q; k; v] and kv = [k; v] along the output rows.
      if (starts_with(rest, "attn.qkv.")) {
        const auto parts = tensor.chunk(3, 0);
        const std::string leaf = rest.substr(9);
        out[block + "attn1.to_q." + leaf] = parts[0];
        out[block + "attn1.to_k." + leaf] = parts[1];
        out[block + "attn1.to_v." + leaf] = parts[2];
        continue;
      }
      if (starts_with(rest, "cross_attn.kv_linear.")) {
        const auto parts = tensor.chunk(2, 0);
        const std::string leaf = rest.substr(21);
        out[block + "attn2.to_k." + leaf] = parts[0];
        out[block + "attn2.to_v." + leaf] = parts[1];
        continue;
      }
      for (const auto& [from, to] : block_renames()) {
        if (starts_with(rest, from)) {
          out[block + to + rest.substr(from.size())] = tensor;
          mapped = true;
          break;
        }
      }
      if (mapped) continue;
    }
    out[name] = tensor;  // unknown: reported as unexpected by the loader
  }
  return out;
}

void load_pixart_weights(PixArtTransformer& model, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  const auto checkpoint = io::SafetensorsCheckpoint::open(file);
  const auto names = checkpoint.names();
  if (!has_official_pixart_names(names)) {
    diffusers::load_checkpoint(*model, checkpoint);
    return;
  }
  std::map<std::string, torch::Tensor> official;
  for (const auto& name : names) official[name] = checkpoint.tensor(name, /*view=*/true);
  dit::load_weights(*model, pixart_official_to_diffusers(official), file + " (official PixArt names)");
}

}  // namespace repa::models
