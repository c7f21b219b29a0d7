#include "core/models/flux_official_names.h"

#include <string>

#include "core/base/error.h"
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
void convert_blocks(OfficialNameTable& c, int64_t dim, bool modulation) {
  for (int64_t i = 0; i < c.count("double_blocks"); ++i) {
    const std::string from = "double_blocks." + std::to_string(i) + ".",
                      to = "transformer_blocks." + std::to_string(i) + ".";
    if (modulation) {
      c.linear(from + "img_mod.lin", to + "norm1.linear");
      c.linear(from + "txt_mod.lin", to + "norm1_context.linear");
    }
    for (const std::string part : {"weight", "bias"}) {
      c.split(from + "img_attn.qkv." + part, {dim, dim, dim},
              {to + "attn.to_q." + part, to + "attn.to_k." + part, to + "attn.to_v." + part});
      c.split(from + "txt_attn.qkv." + part, {dim, dim, dim},
              {to + "attn.add_q_proj." + part, to + "attn.add_k_proj." + part, to + "attn.add_v_proj." + part});
    }
    c.copy(from + "img_attn.norm.query_norm.scale", to + "attn.norm_q.weight");
    c.copy(from + "img_attn.norm.key_norm.scale", to + "attn.norm_k.weight");
    c.copy(from + "txt_attn.norm.query_norm.scale", to + "attn.norm_added_q.weight");
    c.copy(from + "txt_attn.norm.key_norm.scale", to + "attn.norm_added_k.weight");
    c.linear(from + "img_mlp.0", to + "ff.net.0.proj");
    c.linear(from + "img_mlp.2", to + "ff.net.2");
    c.linear(from + "txt_mlp.0", to + "ff_context.net.0.proj");
    c.linear(from + "txt_mlp.2", to + "ff_context.net.2");
    c.linear(from + "img_attn.proj", to + "attn.to_out.0");
    c.linear(from + "txt_attn.proj", to + "attn.to_add_out");
  }
  for (int64_t i = 0; i < c.count("single_blocks"); ++i) {
    const std::string from = "single_blocks." + std::to_string(i) + ".",
                      to = "single_transformer_blocks." + std::to_string(i) + ".";
    if (modulation) c.linear(from + "modulation.lin", to + "norm.linear");
    // linear1 = [q, k, v, mlp input]: the MLP rows are what the three attention projections leave.
    const int64_t mlp = c.take(from + "linear1.weight").size(0) - 3 * dim;
    for (const std::string part : {"weight", "bias"})
      c.split(from + "linear1." + part, {dim, dim, dim, mlp},
              {to + "attn.to_q." + part, to + "attn.to_k." + part, to + "attn.to_v." + part, to + "proj_mlp." + part});
    c.copy(from + "norm.query_norm.scale", to + "attn.norm_q.weight");
    c.copy(from + "norm.key_norm.scale", to + "attn.norm_k.weight");
    c.linear(from + "linear2", to + "proj_out");
  }
}

}  // namespace

std::map<std::string, torch::Tensor> flux_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                const std::string& origin) {
  OfficialNameTable c(tensors, "Flux", origin);
  c.linear("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1");
  c.linear("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2");
  c.linear("vector_in.in_layer", "time_text_embed.text_embedder.linear_1");
  c.linear("vector_in.out_layer", "time_text_embed.text_embedder.linear_2");
  if (c.has("guidance_in.in_layer.weight")) {  // Flux dev; schnell has no guidance embedder
    c.linear("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1");
    c.linear("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2");
  }
  c.linear("txt_in", "context_embedder");
  c.linear("img_in", "x_embedder");
  const int64_t dim = c.take("img_in.weight").size(0);  // the model width
  convert_blocks(c, dim, /*modulation=*/true);
  c.linear("final_layer.linear", "proj_out");
  c.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  c.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return c.finish();
}

std::map<std::string, torch::Tensor> chroma_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                  const std::string& origin) {
  OfficialNameTable c(tensors, "Chroma", origin);
  c.linear("distilled_guidance_layer.in_proj", "distilled_guidance_layer.in_proj");
  c.linear("distilled_guidance_layer.out_proj", "distilled_guidance_layer.out_proj");
  for (int64_t i = 0; i < c.count("distilled_guidance_layer.layers"); ++i) {
    const std::string from = "distilled_guidance_layer.layers." + std::to_string(i) + ".",
                      to = "distilled_guidance_layer.layers." + std::to_string(i) + ".";
    c.linear(from + "in_layer", to + "linear_1");
    c.linear(from + "out_layer", to + "linear_2");
    c.copy("distilled_guidance_layer.norms." + std::to_string(i) + ".scale",
           "distilled_guidance_layer.norms." + std::to_string(i) + ".weight");
  }
  c.linear("txt_in", "context_embedder");
  c.linear("img_in", "x_embedder");
  convert_blocks(c, c.take("img_in.weight").size(0), /*modulation=*/false);
  c.linear("final_layer.linear", "proj_out");
  return c.finish();
}

std::map<std::string, torch::Tensor> flux2_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& origin) {
  OfficialNameTable c(tensors, "Flux.2", origin);  // every linear of Flux.2 is bias-free: weights only
  c.copy("img_in.weight", "x_embedder.weight");
  c.copy("txt_in.weight", "context_embedder.weight");
  c.copy("time_in.in_layer.weight", "time_guidance_embed.timestep_embedder.linear_1.weight");
  c.copy("time_in.out_layer.weight", "time_guidance_embed.timestep_embedder.linear_2.weight");
  if (c.has("guidance_in.in_layer.weight")) {  // [dev]; [klein] has no guidance embedder
    c.copy("guidance_in.in_layer.weight", "time_guidance_embed.guidance_embedder.linear_1.weight");
    c.copy("guidance_in.out_layer.weight", "time_guidance_embed.guidance_embedder.linear_2.weight");
  }
  for (const std::string m :
       {"double_stream_modulation_img", "double_stream_modulation_txt", "single_stream_modulation"})
    c.copy(m + ".lin.weight", m + ".linear.weight");
  const int64_t dim = c.take("img_in.weight").size(0);
  for (int64_t i = 0; i < c.count("double_blocks"); ++i) {
    const std::string from = "double_blocks." + std::to_string(i) + ".",
                      to = "transformer_blocks." + std::to_string(i) + ".";
    c.split(from + "img_attn.qkv.weight", {dim, dim, dim},
            {to + "attn.to_q.weight", to + "attn.to_k.weight", to + "attn.to_v.weight"});
    c.split(from + "txt_attn.qkv.weight", {dim, dim, dim},
            {to + "attn.add_q_proj.weight", to + "attn.add_k_proj.weight", to + "attn.add_v_proj.weight"});
    c.copy(from + "img_attn.norm.query_norm.scale", to + "attn.norm_q.weight");
    c.copy(from + "img_attn.norm.key_norm.scale", to + "attn.norm_k.weight");
    c.copy(from + "txt_attn.norm.query_norm.scale", to + "attn.norm_added_q.weight");
    c.copy(from + "txt_attn.norm.key_norm.scale", to + "attn.norm_added_k.weight");
    c.copy(from + "img_attn.proj.weight", to + "attn.to_out.0.weight");
    c.copy(from + "txt_attn.proj.weight", to + "attn.to_add_out.weight");
    c.copy(from + "img_mlp.0.weight", to + "ff.linear_in.weight");
    c.copy(from + "img_mlp.2.weight", to + "ff.linear_out.weight");
    c.copy(from + "txt_mlp.0.weight", to + "ff_context.linear_in.weight");
    c.copy(from + "txt_mlp.2.weight", to + "ff_context.linear_out.weight");
  }
  for (int64_t i = 0; i < c.count("single_blocks"); ++i) {
    const std::string from = "single_blocks." + std::to_string(i) + ".",
                      to = "single_transformer_blocks." + std::to_string(i) + ".";
    c.copy(from + "linear1.weight", to + "attn.to_qkv_mlp_proj.weight");  // already fused in diffusers too
    c.copy(from + "linear2.weight", to + "attn.to_out.weight");
    c.copy(from + "norm.query_norm.scale", to + "attn.norm_q.weight");
    c.copy(from + "norm.key_norm.scale", to + "attn.norm_k.weight");
  }
  c.copy("final_layer.linear.weight", "proj_out.weight");
  c.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  return c.finish();
}

}  // namespace repa::models
