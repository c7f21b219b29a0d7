#include "core/models/official_single_file.h"

#include <set>

#include "core/base/error.h"

namespace repa::models {

namespace {

// The read table's steps run backwards: each takes diffusers tensors and writes one official tensor.
class OfficialWriter {
 public:
  OfficialWriter(const std::map<std::string, torch::Tensor>& tensors, std::string family, std::string origin)
      : source_(tensors), family_(std::move(family)), origin_(std::move(origin)) {}

  bool has(const std::string& name) const { return source_.count(name) != 0; }
  torch::Tensor take(const std::string& name) {
    const auto it = source_.find(name);
    if (it == source_.end())
      throw InputError(origin_ + ": writing the " + family_ + " single file needs " + name + ", which is missing");
    used_.insert(name);
    return it->second;
  }
  void copy(const std::string& official, const std::string& diffusers) { out_[official] = take(diffusers); }
  void linear(const std::string& official, const std::string& diffusers) {
    copy(official + ".weight", diffusers + ".weight");
    copy(official + ".bias", diffusers + ".bias");
  }
  void fuse(const std::string& official, const std::vector<std::string>& parts) {
    std::vector<torch::Tensor> rows;
    for (const auto& p : parts) rows.push_back(take(p));
    out_[official] = torch::cat(rows, 0);
  }
  // diffusers' (scale, shift) back to the official (shift, scale).
  void swap_halves(const std::string& official, const std::string& diffusers) {
    const auto halves = take(diffusers).chunk(2, 0);
    out_[official] = torch::cat({halves[1], halves[0]}, 0);
  }
  int64_t count(const std::string& block_kind) const {
    int64_t n = 0;
    const std::string head = block_kind + ".";
    for (const auto& item : source_) {
      if (item.first.rfind(head, 0) != 0) continue;
      const auto index = item.first.substr(head.size(), item.first.find('.', head.size()) - head.size());
      if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos)
        n = std::max<int64_t>(n, std::stoll(index) + 1);
    }
    return n;
  }
  std::map<std::string, torch::Tensor> finish() const {
    std::string unknown;
    std::size_t n = 0;
    for (const auto& item : source_) {
      if (used_.count(item.first)) continue;
      if (n++ < 12) unknown += (unknown.empty() ? "" : ", ") + item.first;
    }
    if (n > 12) unknown += " and " + std::to_string(n - 12) + " more";
    if (!unknown.empty())
      throw InputError(origin_ + ": tensors the " + family_ +
                       " single-file table has no official name for: " + unknown);
    return out_;
  }

 private:
  const std::map<std::string, torch::Tensor>& source_;
  std::string family_, origin_;
  std::map<std::string, torch::Tensor> out_;
  std::set<std::string> used_;
};

void write_flux_blocks(OfficialWriter& w, bool modulation) {
  for (int64_t i = 0; i < w.count("transformer_blocks"); ++i) {
    const std::string o = "double_blocks." + std::to_string(i) + ".",
                      d = "transformer_blocks." + std::to_string(i) + ".";
    if (modulation) {
      w.linear(o + "img_mod.lin", d + "norm1.linear");
      w.linear(o + "txt_mod.lin", d + "norm1_context.linear");
    }
    for (const std::string p : {"weight", "bias"}) {
      w.fuse(o + "img_attn.qkv." + p, {d + "attn.to_q." + p, d + "attn.to_k." + p, d + "attn.to_v." + p});
      w.fuse(o + "txt_attn.qkv." + p,
             {d + "attn.add_q_proj." + p, d + "attn.add_k_proj." + p, d + "attn.add_v_proj." + p});
    }
    w.copy(o + "img_attn.norm.query_norm.scale", d + "attn.norm_q.weight");
    w.copy(o + "img_attn.norm.key_norm.scale", d + "attn.norm_k.weight");
    w.copy(o + "txt_attn.norm.query_norm.scale", d + "attn.norm_added_q.weight");
    w.copy(o + "txt_attn.norm.key_norm.scale", d + "attn.norm_added_k.weight");
    w.linear(o + "img_mlp.0", d + "ff.net.0.proj");
    w.linear(o + "img_mlp.2", d + "ff.net.2");
    w.linear(o + "txt_mlp.0", d + "ff_context.net.0.proj");
    w.linear(o + "txt_mlp.2", d + "ff_context.net.2");
    w.linear(o + "img_attn.proj", d + "attn.to_out.0");
    w.linear(o + "txt_attn.proj", d + "attn.to_add_out");
  }
  for (int64_t i = 0; i < w.count("single_transformer_blocks"); ++i) {
    const std::string o = "single_blocks." + std::to_string(i) + ".",
                      d = "single_transformer_blocks." + std::to_string(i) + ".";
    if (modulation) w.linear(o + "modulation.lin", d + "norm.linear");
    for (const std::string p : {"weight", "bias"})
      w.fuse(o + "linear1." + p,
             {d + "attn.to_q." + p, d + "attn.to_k." + p, d + "attn.to_v." + p, d + "proj_mlp." + p});
    w.copy(o + "norm.query_norm.scale", d + "attn.norm_q.weight");
    w.copy(o + "norm.key_norm.scale", d + "attn.norm_k.weight");
    w.linear(o + "linear2", d + "proj_out");
  }
}

std::map<std::string, torch::Tensor> write_flux(const std::map<std::string, torch::Tensor>& t,
                                                const std::string& origin) {
  OfficialWriter w(t, "Flux", origin);
  w.linear("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1");
  w.linear("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2");
  w.linear("vector_in.in_layer", "time_text_embed.text_embedder.linear_1");
  w.linear("vector_in.out_layer", "time_text_embed.text_embedder.linear_2");
  if (w.has("time_text_embed.guidance_embedder.linear_1.weight")) {
    w.linear("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1");
    w.linear("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2");
  }
  w.linear("txt_in", "context_embedder");
  w.linear("img_in", "x_embedder");
  write_flux_blocks(w, /*modulation=*/true);
  w.linear("final_layer.linear", "proj_out");
  w.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  w.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return w.finish();
}

std::map<std::string, torch::Tensor> write_chroma(const std::map<std::string, torch::Tensor>& t,
                                                  const std::string& origin) {
  OfficialWriter w(t, "Chroma", origin);
  w.linear("distilled_guidance_layer.in_proj", "distilled_guidance_layer.in_proj");
  w.linear("distilled_guidance_layer.out_proj", "distilled_guidance_layer.out_proj");
  for (int64_t i = 0; i < w.count("distilled_guidance_layer.layers"); ++i) {
    const std::string l = "distilled_guidance_layer.layers." + std::to_string(i) + ".";
    w.linear(l + "in_layer", l + "linear_1");
    w.linear(l + "out_layer", l + "linear_2");
    w.copy("distilled_guidance_layer.norms." + std::to_string(i) + ".scale",
           "distilled_guidance_layer.norms." + std::to_string(i) + ".weight");
  }
  w.linear("txt_in", "context_embedder");
  w.linear("img_in", "x_embedder");
  write_flux_blocks(w, /*modulation=*/false);
  w.linear("final_layer.linear", "proj_out");
  return w.finish();
}

std::map<std::string, torch::Tensor> write_flux2(const std::map<std::string, torch::Tensor>& t,
                                                 const std::string& origin) {
  OfficialWriter w(t, "Flux.2", origin);  // bias-free linears: weights only
  w.copy("img_in.weight", "x_embedder.weight");
  w.copy("txt_in.weight", "context_embedder.weight");
  w.copy("time_in.in_layer.weight", "time_guidance_embed.timestep_embedder.linear_1.weight");
  w.copy("time_in.out_layer.weight", "time_guidance_embed.timestep_embedder.linear_2.weight");
  if (w.has("time_guidance_embed.guidance_embedder.linear_1.weight")) {
    w.copy("guidance_in.in_layer.weight", "time_guidance_embed.guidance_embedder.linear_1.weight");
    w.copy("guidance_in.out_layer.weight", "time_guidance_embed.guidance_embedder.linear_2.weight");
  }
  for (const std::string m :
       {"double_stream_modulation_img", "double_stream_modulation_txt", "single_stream_modulation"})
    w.copy(m + ".lin.weight", m + ".linear.weight");
  for (int64_t i = 0; i < w.count("transformer_blocks"); ++i) {
    const std::string o = "double_blocks." + std::to_string(i) + ".",
                      d = "transformer_blocks." + std::to_string(i) + ".";
    w.fuse(o + "img_attn.qkv.weight", {d + "attn.to_q.weight", d + "attn.to_k.weight", d + "attn.to_v.weight"});
    w.fuse(o + "txt_attn.qkv.weight",
           {d + "attn.add_q_proj.weight", d + "attn.add_k_proj.weight", d + "attn.add_v_proj.weight"});
    w.copy(o + "img_attn.norm.query_norm.scale", d + "attn.norm_q.weight");
    w.copy(o + "img_attn.norm.key_norm.scale", d + "attn.norm_k.weight");
    w.copy(o + "txt_attn.norm.query_norm.scale", d + "attn.norm_added_q.weight");
    w.copy(o + "txt_attn.norm.key_norm.scale", d + "attn.norm_added_k.weight");
    w.copy(o + "img_attn.proj.weight", d + "attn.to_out.0.weight");
    w.copy(o + "txt_attn.proj.weight", d + "attn.to_add_out.weight");
    w.copy(o + "img_mlp.0.weight", d + "ff.linear_in.weight");
    w.copy(o + "img_mlp.2.weight", d + "ff.linear_out.weight");
    w.copy(o + "txt_mlp.0.weight", d + "ff_context.linear_in.weight");
    w.copy(o + "txt_mlp.2.weight", d + "ff_context.linear_out.weight");
  }
  for (int64_t i = 0; i < w.count("single_transformer_blocks"); ++i) {
    const std::string o = "single_blocks." + std::to_string(i) + ".",
                      d = "single_transformer_blocks." + std::to_string(i) + ".";
    w.copy(o + "linear1.weight", d + "attn.to_qkv_mlp_proj.weight");
    w.copy(o + "linear2.weight", d + "attn.to_out.weight");
    w.copy(o + "norm.query_norm.scale", d + "attn.norm_q.weight");
    w.copy(o + "norm.key_norm.scale", d + "attn.norm_k.weight");
  }
  w.copy("final_layer.linear.weight", "proj_out.weight");
  w.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  return w.finish();
}

std::map<std::string, torch::Tensor> write_sd3(const std::map<std::string, torch::Tensor>& t,
                                               const std::string& origin) {
  OfficialWriter w(t, "SD3", origin);
  w.copy("pos_embed", "pos_embed.pos_embed");
  w.linear("x_embedder.proj", "pos_embed.proj");
  w.linear("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1");
  w.linear("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2");
  w.linear("context_embedder", "context_embedder");
  w.linear("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1");
  w.linear("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2");
  const int64_t layers = w.count("transformer_blocks");
  const auto qkv = [&](const std::string& official, const std::vector<std::string>& d) {
    for (const std::string p : {"weight", "bias"})
      w.fuse(official + "." + p, {d[0] + "." + p, d[1] + "." + p, d[2] + "." + p});
  };
  for (int64_t i = 0; i < layers; ++i) {
    const std::string x = "joint_blocks." + std::to_string(i) + ".x_block.",
                      ctx = "joint_blocks." + std::to_string(i) + ".context_block.",
                      d = "transformer_blocks." + std::to_string(i) + ".";
    const bool last = i == layers - 1;  // context_pre_only
    qkv(x + "attn.qkv", {d + "attn.to_q", d + "attn.to_k", d + "attn.to_v"});
    qkv(ctx + "attn.qkv", {d + "attn.add_q_proj", d + "attn.add_k_proj", d + "attn.add_v_proj"});
    if (w.has(d + "attn.norm_q.weight")) {  // SD3.5's RMS qk-norm
      w.copy(x + "attn.ln_q.weight", d + "attn.norm_q.weight");
      w.copy(x + "attn.ln_k.weight", d + "attn.norm_k.weight");
      w.copy(ctx + "attn.ln_q.weight", d + "attn.norm_added_q.weight");
      w.copy(ctx + "attn.ln_k.weight", d + "attn.norm_added_k.weight");
    }
    w.linear(x + "attn.proj", d + "attn.to_out.0");
    if (!last) w.linear(ctx + "attn.proj", d + "attn.to_add_out");
    if (w.has(d + "attn2.to_q.weight")) {  // SD3.5's dual attention
      qkv(x + "attn2.qkv", {d + "attn2.to_q", d + "attn2.to_k", d + "attn2.to_v"});
      if (w.has(d + "attn2.norm_q.weight")) {
        w.copy(x + "attn2.ln_q.weight", d + "attn2.norm_q.weight");
        w.copy(x + "attn2.ln_k.weight", d + "attn2.norm_k.weight");
      }
      w.linear(x + "attn2.proj", d + "attn2.to_out.0");
    }
    w.linear(x + "adaLN_modulation.1", d + "norm1.linear");
    if (last) {
      w.swap_halves(ctx + "adaLN_modulation.1.weight", d + "norm1_context.linear.weight");
      w.swap_halves(ctx + "adaLN_modulation.1.bias", d + "norm1_context.linear.bias");
    } else {
      w.linear(ctx + "adaLN_modulation.1", d + "norm1_context.linear");
    }
    w.linear(x + "mlp.fc1", d + "ff.net.0.proj");
    w.linear(x + "mlp.fc2", d + "ff.net.2");
    if (!last) {
      w.linear(ctx + "mlp.fc1", d + "ff_context.net.0.proj");
      w.linear(ctx + "mlp.fc2", d + "ff_context.net.2");
    }
  }
  w.linear("final_layer.linear", "proj_out");
  w.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  w.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return w.finish();
}

}  // namespace

std::string official_single_file_family(const std::vector<std::string>& names) {
  const std::set<std::string> n(names.begin(), names.end());
  if (n.count("double_stream_modulation_img.linear.weight")) return "flux2";
  if (n.count("distilled_guidance_layer.in_proj.weight")) return "chroma";
  if (n.count("pos_embed.proj.weight") && n.count("transformer_blocks.0.norm1_context.linear.weight")) return "sd3";
  if (n.count("time_text_embed.text_embedder.linear_1.weight") && n.count("x_embedder.weight") &&
      (n.count("single_transformer_blocks.0.proj_mlp.weight") ||
       n.count("transformer_blocks.0.norm1_context.linear.weight")))
    return "flux";
  return "";
}

std::map<std::string, torch::Tensor> diffusers_to_official(const std::string& family,
                                                           const std::map<std::string, torch::Tensor>& tensors,
                                                           const std::string& origin) {
  if (family == "flux") return write_flux(tensors, origin);
  if (family == "chroma") return write_chroma(tensors, origin);
  if (family == "flux2") return write_flux2(tensors, origin);
  if (family == "sd3") return write_sd3(tensors, origin);
  throw InputError(origin + ": no official single-file table to write for family '" + family +
                   "' (flux, chroma, flux2 and sd3 have one)");
}

}  // namespace repa::models
