#include "core/models/pixart_official_names.h"

#include <filesystem>

#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/models/dit_weights.h"
#include "core/models/official_names.h"

namespace repa::models {

NameTable pixart_name_table(const NameShape& shape) {
  NameTableBuilder t;
  t.linear("x_embedder.proj", "pos_embed.proj");
  t.linear("y_embedder.y_proj.fc1", "caption_projection.linear_1");
  t.linear("y_embedder.y_proj.fc2", "caption_projection.linear_2");
  t.linear("t_embedder.mlp.0", "adaln_single.emb.timestep_embedder.linear_1");
  t.linear("t_embedder.mlp.2", "adaln_single.emb.timestep_embedder.linear_2");
  // PixArt-α 1024's micro-conditions (use_additional_conditions); PixArt-Σ has none.
  if (shape.has("csize_embedder.mlp.0.weight", "adaln_single.emb.resolution_embedder.linear_1.weight")) {
    t.linear("csize_embedder.mlp.0", "adaln_single.emb.resolution_embedder.linear_1");
    t.linear("csize_embedder.mlp.2", "adaln_single.emb.resolution_embedder.linear_2");
    t.linear("ar_embedder.mlp.0", "adaln_single.emb.aspect_ratio_embedder.linear_1");
    t.linear("ar_embedder.mlp.2", "adaln_single.emb.aspect_ratio_embedder.linear_2");
  }
  t.linear("t_block.1", "adaln_single.linear");
  // The attention width: every projection of a block has as many output rows as the patch embedding.
  const int64_t dim = shape.rows("x_embedder.proj.weight", "pos_embed.proj.weight");
  for (int64_t i = 0; i < shape.count("blocks", "transformer_blocks"); ++i) {
    const std::string o = "blocks." + std::to_string(i) + ".", d = "transformer_blocks." + std::to_string(i) + ".";
    t.copy(o + "scale_shift_table", d + "scale_shift_table");
    for (const std::string p : {"weight", "bias"}) {
      t.fuse(o + "attn.qkv." + p, {d + "attn1.to_q." + p, d + "attn1.to_k." + p, d + "attn1.to_v." + p},
             {dim, dim, dim});
      t.fuse(o + "cross_attn.kv_linear." + p, {d + "attn2.to_k." + p, d + "attn2.to_v." + p}, {dim, dim});
    }
    t.linear(o + "attn.proj", d + "attn1.to_out.0");
    t.linear(o + "cross_attn.q_linear", d + "attn2.to_q");
    t.linear(o + "cross_attn.proj", d + "attn2.to_out.0");
    t.linear(o + "mlp.fc1", d + "ff.net.0.proj");
    t.linear(o + "mlp.fc2", d + "ff.net.2");
  }
  t.linear("final_layer.linear", "proj_out");
  t.copy("final_layer.scale_shift_table", "scale_shift_table");
  return t.table();
}

bool has_official_pixart_names(const std::vector<std::string>& names) {
  for (const auto& name : names)
    if (strip_single_file_prefix(name) == "x_embedder.proj.weight") return true;
  return false;
}

std::map<std::string, torch::Tensor> pixart_official_to_diffusers(const std::map<std::string, torch::Tensor>& official,
                                                                  const std::string& origin) {
  std::map<std::string, torch::Tensor> own;
  for (const auto& [name, tensor] : strip_single_file_prefixes(official))
    if (name != "pos_embed" && name != "y_embedder.y_embedding") own[name] = tensor;
  return apply_official_to_diffusers(pixart_name_table(NameShape(own, /*official=*/true)), own, "PixArt", origin);
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
  const std::string origin = file + " (official PixArt names)";
  dit::load_weights(*model, pixart_official_to_diffusers(official, origin), origin);
}

}  // namespace repa::models
