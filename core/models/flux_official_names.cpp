#include "core/models/flux_official_names.h"

#include <string>

#include "core/models/official_names.h"

namespace repa::models {

bool is_flux_official_naming(const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const auto n = strip_single_file_prefix(name);
    if (n.rfind("double_blocks.", 0) == 0 || n.rfind("single_blocks.", 0) == 0) return true;
  }
  return false;
}

namespace {

// The double- and single-stream blocks Flux and Chroma share (Chroma's carry no modulation weights).
void flux_blocks(NameTableBuilder& t, const NameShape& shape, int64_t dim, bool modulation) {
  for (int64_t i = 0; i < shape.count("double_blocks", "transformer_blocks"); ++i) {
    const std::string o = "double_blocks." + std::to_string(i) + ".",
                      d = "transformer_blocks." + std::to_string(i) + ".";
    if (modulation) {
      t.linear(o + "img_mod.lin", d + "norm1.linear");
      t.linear(o + "txt_mod.lin", d + "norm1_context.linear");
    }
    for (const std::string p : {"weight", "bias"}) {
      t.fuse(o + "img_attn.qkv." + p, {d + "attn.to_q." + p, d + "attn.to_k." + p, d + "attn.to_v." + p},
             {dim, dim, dim});
      t.fuse(o + "txt_attn.qkv." + p,
             {d + "attn.add_q_proj." + p, d + "attn.add_k_proj." + p, d + "attn.add_v_proj." + p}, {dim, dim, dim});
    }
    t.copy(o + "img_attn.norm.query_norm.scale", d + "attn.norm_q.weight");
    t.copy(o + "img_attn.norm.key_norm.scale", d + "attn.norm_k.weight");
    t.copy(o + "txt_attn.norm.query_norm.scale", d + "attn.norm_added_q.weight");
    t.copy(o + "txt_attn.norm.key_norm.scale", d + "attn.norm_added_k.weight");
    t.linear(o + "img_mlp.0", d + "ff.net.0.proj");
    t.linear(o + "img_mlp.2", d + "ff.net.2");
    t.linear(o + "txt_mlp.0", d + "ff_context.net.0.proj");
    t.linear(o + "txt_mlp.2", d + "ff_context.net.2");
    t.linear(o + "img_attn.proj", d + "attn.to_out.0");
    t.linear(o + "txt_attn.proj", d + "attn.to_add_out");
  }
  for (int64_t i = 0; i < shape.count("single_blocks", "single_transformer_blocks"); ++i) {
    const std::string o = "single_blocks." + std::to_string(i) + ".",
                      d = "single_transformer_blocks." + std::to_string(i) + ".";
    if (modulation) t.linear(o + "modulation.lin", d + "norm.linear");
    // linear1 = [q, k, v, mlp input]: the MLP rows are what the three attention projections leave.
    for (const std::string p : {"weight", "bias"})
      t.fuse(o + "linear1." + p,
             {d + "attn.to_q." + p, d + "attn.to_k." + p, d + "attn.to_v." + p, d + "proj_mlp." + p},
             {dim, dim, dim, -1});
    t.copy(o + "norm.query_norm.scale", d + "attn.norm_q.weight");
    t.copy(o + "norm.key_norm.scale", d + "attn.norm_k.weight");
    t.linear(o + "linear2", d + "proj_out");
  }
}

}  // namespace

NameTable flux_name_table(const NameShape& shape) {
  NameTableBuilder t;
  t.linear("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1");
  t.linear("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2");
  t.linear("vector_in.in_layer", "time_text_embed.text_embedder.linear_1");
  t.linear("vector_in.out_layer", "time_text_embed.text_embedder.linear_2");
  // Flux dev; schnell has no guidance embedder.
  if (shape.has("guidance_in.in_layer.weight", "time_text_embed.guidance_embedder.linear_1.weight")) {
    t.linear("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1");
    t.linear("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2");
  }
  t.linear("txt_in", "context_embedder");
  t.linear("img_in", "x_embedder");
  flux_blocks(t, shape, shape.rows("img_in.weight", "x_embedder.weight"), /*modulation=*/true);
  t.linear("final_layer.linear", "proj_out");
  t.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  t.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return t.table();
}

NameTable chroma_name_table(const NameShape& shape) {
  NameTableBuilder t;
  t.linear("distilled_guidance_layer.in_proj", "distilled_guidance_layer.in_proj");
  t.linear("distilled_guidance_layer.out_proj", "distilled_guidance_layer.out_proj");
  for (int64_t i = 0; i < shape.count("distilled_guidance_layer.layers", "distilled_guidance_layer.layers"); ++i) {
    const std::string l = "distilled_guidance_layer.layers." + std::to_string(i) + ".",
                      n = "distilled_guidance_layer.norms." + std::to_string(i) + ".";
    t.linear(l + "in_layer", l + "linear_1");
    t.linear(l + "out_layer", l + "linear_2");
    t.copy(n + "scale", n + "weight");
  }
  t.linear("txt_in", "context_embedder");
  t.linear("img_in", "x_embedder");
  flux_blocks(t, shape, shape.rows("img_in.weight", "x_embedder.weight"), /*modulation=*/false);
  t.linear("final_layer.linear", "proj_out");
  return t.table();
}

NameTable flux2_name_table(const NameShape& shape) {
  NameTableBuilder t;  // every linear of Flux.2 is bias-free: weights only
  t.copy("img_in.weight", "x_embedder.weight");
  t.copy("txt_in.weight", "context_embedder.weight");
  t.copy("time_in.in_layer.weight", "time_guidance_embed.timestep_embedder.linear_1.weight");
  t.copy("time_in.out_layer.weight", "time_guidance_embed.timestep_embedder.linear_2.weight");
  // [dev]; [klein] has no guidance embedder.
  if (shape.has("guidance_in.in_layer.weight", "time_guidance_embed.guidance_embedder.linear_1.weight")) {
    t.copy("guidance_in.in_layer.weight", "time_guidance_embed.guidance_embedder.linear_1.weight");
    t.copy("guidance_in.out_layer.weight", "time_guidance_embed.guidance_embedder.linear_2.weight");
  }
  for (const std::string m :
       {"double_stream_modulation_img", "double_stream_modulation_txt", "single_stream_modulation"})
    t.copy(m + ".lin.weight", m + ".linear.weight");
  const int64_t dim = shape.rows("img_in.weight", "x_embedder.weight");
  for (int64_t i = 0; i < shape.count("double_blocks", "transformer_blocks"); ++i) {
    const std::string o = "double_blocks." + std::to_string(i) + ".",
                      d = "transformer_blocks." + std::to_string(i) + ".";
    t.fuse(o + "img_attn.qkv.weight", {d + "attn.to_q.weight", d + "attn.to_k.weight", d + "attn.to_v.weight"},
           {dim, dim, dim});
    t.fuse(o + "txt_attn.qkv.weight",
           {d + "attn.add_q_proj.weight", d + "attn.add_k_proj.weight", d + "attn.add_v_proj.weight"}, {dim, dim, dim});
    t.copy(o + "img_attn.norm.query_norm.scale", d + "attn.norm_q.weight");
    t.copy(o + "img_attn.norm.key_norm.scale", d + "attn.norm_k.weight");
    t.copy(o + "txt_attn.norm.query_norm.scale", d + "attn.norm_added_q.weight");
    t.copy(o + "txt_attn.norm.key_norm.scale", d + "attn.norm_added_k.weight");
    t.copy(o + "img_attn.proj.weight", d + "attn.to_out.0.weight");
    t.copy(o + "txt_attn.proj.weight", d + "attn.to_add_out.weight");
    t.copy(o + "img_mlp.0.weight", d + "ff.linear_in.weight");
    t.copy(o + "img_mlp.2.weight", d + "ff.linear_out.weight");
    t.copy(o + "txt_mlp.0.weight", d + "ff_context.linear_in.weight");
    t.copy(o + "txt_mlp.2.weight", d + "ff_context.linear_out.weight");
  }
  for (int64_t i = 0; i < shape.count("single_blocks", "single_transformer_blocks"); ++i) {
    const std::string o = "single_blocks." + std::to_string(i) + ".",
                      d = "single_transformer_blocks." + std::to_string(i) + ".";
    t.copy(o + "linear1.weight", d + "attn.to_qkv_mlp_proj.weight");  // already fused in diffusers too
    t.copy(o + "linear2.weight", d + "attn.to_out.weight");
    t.copy(o + "norm.query_norm.scale", d + "attn.norm_q.weight");
    t.copy(o + "norm.key_norm.scale", d + "attn.norm_k.weight");
  }
  t.copy("final_layer.linear.weight", "proj_out.weight");
  t.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  return t.table();
}

namespace {

std::map<std::string, torch::Tensor> read_with(NameTable (*table)(const NameShape&),
                                               const std::map<std::string, torch::Tensor>& tensors,
                                               const std::string& family, const std::string& origin) {
  const auto own = strip_single_file_prefixes(tensors);
  return apply_official_to_diffusers(table(NameShape(own, /*official=*/true)), own, family, origin);
}

}  // namespace

std::map<std::string, torch::Tensor> flux_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                const std::string& origin) {
  return read_with(flux_name_table, tensors, "Flux", origin);
}

std::map<std::string, torch::Tensor> chroma_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                  const std::string& origin) {
  return read_with(chroma_name_table, tensors, "Chroma", origin);
}

std::map<std::string, torch::Tensor> flux2_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& origin) {
  return read_with(flux2_name_table, tensors, "Flux.2", origin);
}

}  // namespace repa::models
