#include "core/models/lumina2_official_names.h"

#include <filesystem>
#include <string>

#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/models/dit_weights.h"
#include "core/models/official_names.h"

namespace repa::models {

bool is_lumina2_official_naming(const std::vector<std::string>& names) {
  for (const auto& name : names)
    if (strip_single_file_prefix(name) == "cap_embedder.0.weight") return true;
  return false;
}

std::map<std::string, torch::Tensor> lumina2_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                   const std::string& origin) {
  std::map<std::string, torch::Tensor> own;
  // The original model carries a final norm its forward never uses; diffusers drops it too.
  for (const auto& [name, tensor] : tensors)
    if (strip_single_file_prefix(name) != "norm_final.weight") own[name] = tensor;
  OfficialNameTable c(own, "Lumina2", origin);
  const int64_t dim = c.take("x_embedder.weight").size(0);
  c.linear("x_embedder", "x_embedder");
  c.linear("t_embedder.mlp.0", "time_caption_embed.timestep_embedder.linear_1");
  c.linear("t_embedder.mlp.2", "time_caption_embed.timestep_embedder.linear_2");
  c.copy("cap_embedder.0.weight", "time_caption_embed.caption_embedder.0.weight");
  c.linear("cap_embedder.1", "time_caption_embed.caption_embedder.1");
  // One block of any of the three lists; the context refiner's blocks are unmodulated (norm1 is a plain RMSNorm).
  const auto block = [&](const std::string& list, int64_t i, bool modulated) {
    const std::string from = list + "." + std::to_string(i) + ".", to = from;
    const auto qkv = c.take(from + "attention.qkv.weight");
    const int64_t kv = (qkv.size(0) - dim) / 2;
    c.split(from + "attention.qkv.weight", {dim, kv, kv},
            {to + "attn.to_q.weight", to + "attn.to_k.weight", to + "attn.to_v.weight"});
    c.copy(from + "attention.out.weight", to + "attn.to_out.0.weight");
    c.copy(from + "attention.q_norm.weight", to + "attn.norm_q.weight");
    c.copy(from + "attention.k_norm.weight", to + "attn.norm_k.weight");
    c.copy(from + "feed_forward.w1.weight", to + "feed_forward.linear_1.weight");
    c.copy(from + "feed_forward.w2.weight", to + "feed_forward.linear_2.weight");
    c.copy(from + "feed_forward.w3.weight", to + "feed_forward.linear_3.weight");
    c.copy(from + "attention_norm1.weight", to + (modulated ? "norm1.norm.weight" : "norm1.weight"));
    c.copy(from + "attention_norm2.weight", to + "norm2.weight");
    c.copy(from + "ffn_norm1.weight", to + "ffn_norm1.weight");
    c.copy(from + "ffn_norm2.weight", to + "ffn_norm2.weight");
    if (modulated) c.linear(from + "adaLN_modulation.1", to + "norm1.linear");
  };
  for (int64_t i = 0, n = c.count("noise_refiner"); i < n; ++i) block("noise_refiner", i, true);
  for (int64_t i = 0, n = c.count("context_refiner"); i < n; ++i) block("context_refiner", i, false);
  for (int64_t i = 0, n = c.count("layers"); i < n; ++i) block("layers", i, true);
  c.linear("final_layer.adaLN_modulation.1", "norm_out.linear_1");
  c.linear("final_layer.linear", "norm_out.linear_2");
  return c.finish();
}

void load_lumina2_weights(Lumina2Transformer& model, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  const auto checkpoint = io::SafetensorsCheckpoint::open(file);
  const auto names = checkpoint.names();
  if (!is_lumina2_official_naming(names)) {
    diffusers::load_checkpoint(*model, checkpoint);
    return;
  }
  std::map<std::string, torch::Tensor> official;
  for (const auto& name : names) official[name] = checkpoint.tensor(name, /*view=*/true);
  dit::load_weights(*model, lumina2_official_to_diffusers(official, file), file + " (official Lumina2 names)");
}

}  // namespace repa::models
