#include "core/models/sd3_official_names.h"

#include <string>

#include "core/models/official_names.h"

namespace repa::models {

bool is_sd3_official_naming(const std::vector<std::string>& names) {
  for (const auto& name : names)
    if (strip_single_file_prefix(name).rfind("joint_blocks.", 0) == 0) return true;
  return false;
}

NameTable sd3_name_table(const NameShape& shape) {
  NameTableBuilder t;
  t.copy("pos_embed", "pos_embed.pos_embed");
  t.linear("x_embedder.proj", "pos_embed.proj");
  t.linear("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1");
  t.linear("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2");
  t.linear("context_embedder", "context_embedder");
  t.linear("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1");
  t.linear("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2");
  const int64_t dim = shape.rows("x_embedder.proj.weight", "pos_embed.proj.weight");  // the model width
  const int64_t layers = shape.count("joint_blocks", "transformer_blocks");
  const auto qkv = [&](const std::string& official, const std::vector<std::string>& d) {
    for (const std::string p : {"weight", "bias"})
      t.fuse(official + "." + p, {d[0] + "." + p, d[1] + "." + p, d[2] + "." + p}, {dim, dim, dim});
  };
  for (int64_t i = 0; i < layers; ++i) {
    const std::string x = "joint_blocks." + std::to_string(i) + ".x_block.",
                      ctx = "joint_blocks." + std::to_string(i) + ".context_block.",
                      d = "transformer_blocks." + std::to_string(i) + ".";
    const bool last = i == layers - 1;  // context_pre_only: no text output projection, no text feed-forward
    qkv(x + "attn.qkv", {d + "attn.to_q", d + "attn.to_k", d + "attn.to_v"});
    qkv(ctx + "attn.qkv", {d + "attn.add_q_proj", d + "attn.add_k_proj", d + "attn.add_v_proj"});
    if (shape.has(x + "attn.ln_q.weight", d + "attn.norm_q.weight")) {  // SD3.5's RMS qk-norm
      t.copy(x + "attn.ln_q.weight", d + "attn.norm_q.weight");
      t.copy(x + "attn.ln_k.weight", d + "attn.norm_k.weight");
      t.copy(ctx + "attn.ln_q.weight", d + "attn.norm_added_q.weight");
      t.copy(ctx + "attn.ln_k.weight", d + "attn.norm_added_k.weight");
    }
    t.linear(x + "attn.proj", d + "attn.to_out.0");
    if (!last) t.linear(ctx + "attn.proj", d + "attn.to_add_out");
    if (shape.has(x + "attn2.qkv.weight", d + "attn2.to_q.weight")) {  // SD3.5's dual attention
      qkv(x + "attn2.qkv", {d + "attn2.to_q", d + "attn2.to_k", d + "attn2.to_v"});
      if (shape.has(x + "attn2.ln_q.weight", d + "attn2.norm_q.weight")) {
        t.copy(x + "attn2.ln_q.weight", d + "attn2.norm_q.weight");
        t.copy(x + "attn2.ln_k.weight", d + "attn2.norm_k.weight");
      }
      t.linear(x + "attn2.proj", d + "attn2.to_out.0");
    }
    t.linear(x + "adaLN_modulation.1", d + "norm1.linear");
    if (last) {
      t.swap_halves(ctx + "adaLN_modulation.1.weight", d + "norm1_context.linear.weight");
      t.swap_halves(ctx + "adaLN_modulation.1.bias", d + "norm1_context.linear.bias");
    } else {
      t.linear(ctx + "adaLN_modulation.1", d + "norm1_context.linear");
    }
    t.linear(x + "mlp.fc1", d + "ff.net.0.proj");
    t.linear(x + "mlp.fc2", d + "ff.net.2");
    if (!last) {
      t.linear(ctx + "mlp.fc1", d + "ff_context.net.0.proj");
      t.linear(ctx + "mlp.fc2", d + "ff_context.net.2");
    }
  }
  t.linear("final_layer.linear", "proj_out");
  t.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  t.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return t.table();
}

std::map<std::string, torch::Tensor> sd3_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                               const std::string& origin) {
  // An all-in-one file also holds the text encoders and the autoencoder; the transformer reads its own tensors.
  std::map<std::string, torch::Tensor> own;
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("text_encoders.", 0) != 0 && name.rfind("first_stage_model.", 0) != 0)
      own[strip_single_file_prefix(name)] = tensor;
  return apply_official_to_diffusers(sd3_name_table(NameShape(own, /*official=*/true)), own, "SD3", origin);
}

}  // namespace repa::models
