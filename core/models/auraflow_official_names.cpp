#include "core/models/auraflow_official_names.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/models/dit_weights.h"

namespace repa::models {

namespace {

const std::string kComfyPrefix = "model.diffusion_model.";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

const std::vector<std::pair<std::string, std::string>>& renames() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"t_embedder.mlp.0.", "time_step_proj.linear_1."},
      {"t_embedder.mlp.2.", "time_step_proj.linear_2."},
      {"cond_seq_linear.", "context_embedder."},
      {"final_linear.", "proj_out."},
      {"positional_encoding", "pos_embed.pos_embed"},
      {"init_x_linear.", "pos_embed.proj."},
      {"register_tokens", "register_tokens"},
  };
  return table;
}

// Inside double_layers.N. (→ joint_transformer_blocks.N.) and single_layers.N. (→ single_transformer_blocks.N.).
const std::vector<std::pair<std::string, std::string>>& joint_renames() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"mlpX.c_fc1.", "ff.linear_1."},
      {"mlpX.c_fc2.", "ff.linear_2."},
      {"mlpX.c_proj.", "ff.out_projection."},
      {"mlpC.c_fc1.", "ff_context.linear_1."},
      {"mlpC.c_fc2.", "ff_context.linear_2."},
      {"mlpC.c_proj.", "ff_context.out_projection."},
      {"modX.1.", "norm1.linear."},
      {"modC.1.", "norm1_context.linear."},
      {"attn.w2q.", "attn.to_q."},
      {"attn.w2k.", "attn.to_k."},
      {"attn.w2v.", "attn.to_v."},
      {"attn.w2o.", "attn.to_out.0."},
      {"attn.w1q.", "attn.add_q_proj."},
      {"attn.w1k.", "attn.add_k_proj."},
      {"attn.w1v.", "attn.add_v_proj."},
      {"attn.w1o.", "attn.to_add_out."},
  };
  return table;
}

const std::vector<std::pair<std::string, std::string>>& single_renames() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"mlp.c_fc1.", "ff.linear_1."}, {"mlp.c_fc2.", "ff.linear_2."},  {"mlp.c_proj.", "ff.out_projection."},
      {"modCX.1.", "norm1.linear."},  {"attn.w1q.", "attn.to_q."},     {"attn.w1k.", "attn.to_k."},
      {"attn.w1v.", "attn.to_v."},    {"attn.w1o.", "attn.to_out.0."},
  };
  return table;
}

// "double_layers.3.attn.w2q.weight" with its block table → "joint_transformer_blocks.3.attn.to_q.weight", or "".
std::string rename_in_block(const std::string& name, const std::string& from, const std::string& to,
                            const std::vector<std::pair<std::string, std::string>>& table) {
  if (!starts_with(name, from)) return "";
  const auto dot = name.find('.', from.size());
  if (dot == std::string::npos) return "";
  const std::string rest = name.substr(dot + 1);
  for (const auto& [a, b] : table)
    if (starts_with(rest, a)) return to + name.substr(from.size(), dot - from.size()) + "." + b + rest.substr(a.size());
  return "";
}

}  // namespace

bool has_original_auraflow_names(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [](const std::string& n) {
    return n == "init_x_linear.weight" || n == kComfyPrefix + "init_x_linear.weight";
  });
}

std::map<std::string, torch::Tensor> auraflow_original_to_diffusers(
    const std::map<std::string, torch::Tensor>& original) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [full_name, tensor] : original) {
    const std::string name = starts_with(full_name, kComfyPrefix) ? full_name.substr(kComfyPrefix.size()) : full_name;
    if (starts_with(name, "modF.1.")) {
      // The final modulation's rows are [shift; scale] there and [scale; shift] in norm_out.linear.
      const auto parts = tensor.chunk(2, 0);
      out["norm_out.linear." + name.substr(7)] = torch::cat({parts[1], parts[0]}, 0);
      continue;
    }
    const auto renamed =
        std::find_if(renames().begin(), renames().end(), [&](const auto& r) { return starts_with(name, r.first); });
    if (renamed != renames().end()) {
      out[renamed->second + name.substr(renamed->first.size())] = tensor;
      continue;
    }
    std::string mapped = rename_in_block(name, "double_layers.", "joint_transformer_blocks.", joint_renames());
    if (mapped.empty())
      mapped = rename_in_block(name, "single_layers.", "single_transformer_blocks.", single_renames());
    out[mapped.empty() ? full_name : mapped] = tensor;  // unknown: reported as unexpected by the loader
  }
  return out;
}

void load_auraflow_weights(AuraFlowTransformer& model, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  const auto checkpoint = io::SafetensorsCheckpoint::open(file);
  const auto names = checkpoint.names();
  if (!has_original_auraflow_names(names)) {
    diffusers::load_checkpoint(*model, checkpoint);
    return;
  }
  std::map<std::string, torch::Tensor> original;
  for (const auto& name : names) original[name] = checkpoint.tensor(name, /*view=*/true);
  dit::load_weights(*model, auraflow_original_to_diffusers(original), file + " (original AuraFlow names)");
}

}  // namespace repa::models
