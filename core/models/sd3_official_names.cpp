#include "core/models/sd3_official_names.h"

#include <string>

#include "core/models/official_names.h"

namespace repa::models {

bool is_sd3_official_naming(const std::vector<std::string>& names) {
  for (const auto& name : names)
    if (strip_single_file_prefix(name).rfind("joint_blocks.", 0) == 0) return true;
  return false;
}

std::map<std::string, torch::Tensor> sd3_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                               const std::string& origin) {
  // An all-in-one file also holds the text encoders and the autoencoder; the transformer reads its own tensors.
  std::map<std::string, torch::Tensor> own;
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("text_encoders.", 0) != 0 && name.rfind("first_stage_model.", 0) != 0) own[name] = tensor;
  OfficialNameTable c(own, "SD3", origin);
  c.copy("pos_embed", "pos_embed.pos_embed");
  c.linear("x_embedder.proj", "pos_embed.proj");
  c.linear("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1");
  c.linear("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2");
  c.linear("context_embedder", "context_embedder");
  c.linear("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1");
  c.linear("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2");
  const int64_t dim = c.take("x_embedder.proj.weight").size(0);  // the model width
  const int64_t layers = c.count("joint_blocks");
  const auto qkv = [&](const std::string& from, const std::vector<std::string>& to) {
    for (const std::string part : {"weight", "bias"})
      c.split(from + "." + part, {dim, dim, dim}, {to[0] + "." + part, to[1] + "." + part, to[2] + "." + part});
  };
  for (int64_t i = 0; i < layers; ++i) {
    const std::string x = "joint_blocks." + std::to_string(i) + ".x_block.",
                      ctx = "joint_blocks." + std::to_string(i) + ".context_block.",
                      to = "transformer_blocks." + std::to_string(i) + ".";
    const bool last = i == layers - 1;  // context_pre_only: no text output projection, no text feed-forward
    qkv(x + "attn.qkv", {to + "attn.to_q", to + "attn.to_k", to + "attn.to_v"});
    qkv(ctx + "attn.qkv", {to + "attn.add_q_proj", to + "attn.add_k_proj", to + "attn.add_v_proj"});
    if (c.has(x + "attn.ln_q.weight")) {  // SD3.5's RMS qk-norm
      c.copy(x + "attn.ln_q.weight", to + "attn.norm_q.weight");
      c.copy(x + "attn.ln_k.weight", to + "attn.norm_k.weight");
      c.copy(ctx + "attn.ln_q.weight", to + "attn.norm_added_q.weight");
      c.copy(ctx + "attn.ln_k.weight", to + "attn.norm_added_k.weight");
    }
    c.linear(x + "attn.proj", to + "attn.to_out.0");
    if (!last) c.linear(ctx + "attn.proj", to + "attn.to_add_out");
    if (c.has(x + "attn2.qkv.weight")) {  // SD3.5's dual attention
      qkv(x + "attn2.qkv", {to + "attn2.to_q", to + "attn2.to_k", to + "attn2.to_v"});
      if (c.has(x + "attn2.ln_q.weight")) {
        c.copy(x + "attn2.ln_q.weight", to + "attn2.norm_q.weight");
        c.copy(x + "attn2.ln_k.weight", to + "attn2.norm_k.weight");
      }
      c.linear(x + "attn2.proj", to + "attn2.to_out.0");
    }
    c.linear(x + "adaLN_modulation.1", to + "norm1.linear");
    if (last) {
      c.swap_halves(ctx + "adaLN_modulation.1.weight", to + "norm1_context.linear.weight");
      c.swap_halves(ctx + "adaLN_modulation.1.bias", to + "norm1_context.linear.bias");
    } else {
      c.linear(ctx + "adaLN_modulation.1", to + "norm1_context.linear");
    }
    c.linear(x + "mlp.fc1", to + "ff.net.0.proj");
    c.linear(x + "mlp.fc2", to + "ff.net.2");
    if (!last) {
      c.linear(ctx + "mlp.fc1", to + "ff_context.net.0.proj");
      c.linear(ctx + "mlp.fc2", to + "ff_context.net.2");
    }
  }
  c.linear("final_layer.linear", "proj_out");
  c.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  c.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return c.finish();
}

}  // namespace repa::models
