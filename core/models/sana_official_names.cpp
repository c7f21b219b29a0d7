#include "core/models/sana_official_names.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/models/dit_weights.h"

namespace repa::models {

namespace {

const std::string kComfyPrefix = "model.diffusion_model.";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Renames inside blocks.N. (→ transformer_blocks.N.); the fused projections are handled apart.
const std::vector<std::pair<std::string, std::string>>& block_renames() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"scale_shift_table", "scale_shift_table"},
      {"attn.proj.", "attn1.to_out.0."},
      {"attn.q_norm.", "attn1.norm_q."},
      {"attn.k_norm.", "attn1.norm_k."},
      {"cross_attn.q_linear.", "attn2.to_q."},
      {"cross_attn.proj.", "attn2.to_out.0."},
      {"cross_attn.q_norm.", "attn2.norm_q."},
      {"cross_attn.k_norm.", "attn2.norm_k."},
      {"mlp.inverted_conv.conv.", "ff.conv_inverted."},
      {"mlp.depth_conv.conv.", "ff.conv_depth."},
      {"mlp.point_conv.conv.", "ff.conv_point."},
  };
  return table;
}

}  // namespace

bool has_official_sana_names(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [](const std::string& n) {
    return n == "x_embedder.proj.weight" || n == kComfyPrefix + "x_embedder.proj.weight";
  });
}

std::map<std::string, torch::Tensor> sana_official_to_diffusers(const std::map<std::string, torch::Tensor>& official,
                                                                bool guidance_embeds) {
  const std::string timestep = guidance_embeds ? "time_embed.timestep_embedder." : "time_embed.emb.timestep_embedder.";
  const std::vector<std::pair<std::string, std::string>> renames = {
      {"x_embedder.proj.", "patch_embed.proj."},
      {"y_embedder.y_proj.fc1.", "caption_projection.linear_1."},
      {"y_embedder.y_proj.fc2.", "caption_projection.linear_2."},
      {"attention_y_norm.", "caption_norm."},
      {"t_embedder.mlp.0.", timestep + "linear_1."},
      {"t_embedder.mlp.2.", timestep + "linear_2."},
      {"cfg_embedder.mlp.0.", "time_embed.guidance_embedder.linear_1."},
      {"cfg_embedder.mlp.2.", "time_embed.guidance_embedder.linear_2."},
      {"t_block.1.", "time_embed.linear."},
      {"final_layer.linear.", "proj_out."},
      {"final_layer.scale_shift_table", "scale_shift_table"},
  };
  std::map<std::string, torch::Tensor> out;
  for (const auto& [full_name, tensor] : official) {
    const std::string name = starts_with(full_name, kComfyPrefix) ? full_name.substr(kComfyPrefix.size()) : full_name;
    if (name == "pos_embed" || name == "y_embedder.y_embedding") continue;
    const auto renamed =
        std::find_if(renames.begin(), renames.end(), [&](const auto& r) { return starts_with(name, r.first); });
    if (renamed != renames.end()) {
      out[renamed->second + name.substr(renamed->first.size())] = tensor;
      continue;
    }
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
      const auto in_block = std::find_if(block_renames().begin(), block_renames().end(),
                                         [&](const auto& r) { return starts_with(rest, r.first); });
      if (in_block != block_renames().end()) {
        out[block + in_block->second + rest.substr(in_block->first.size())] = tensor;
        continue;
      }
    }
    out[full_name] = tensor;  // unknown: reported as unexpected by the loader
  }
  return out;
}

void load_sana_weights(SanaTransformer& model, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  const auto checkpoint = io::SafetensorsCheckpoint::open(file);
  const auto names = checkpoint.names();
  if (!has_official_sana_names(names)) {
    diffusers::load_checkpoint(*model, checkpoint);
    return;
  }
  std::map<std::string, torch::Tensor> official;
  for (const auto& name : names) official[name] = checkpoint.tensor(name, /*view=*/true);
  dit::load_weights(*model, sana_official_to_diffusers(official, model->config.guidance_embeds),
                    file + " (official Sana names)");
}

}  // namespace repa::models
