#include "core/models/flux_official_names.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "core/base/error.h"

namespace repa::models {

namespace {

const std::string kPrefix = "model.diffusion_model.";

std::string strip(const std::string& name) {
  return name.rfind(kPrefix, 0) == 0 ? name.substr(kPrefix.size()) : name;
}

// Collects the converted tensors and remembers which source names were used.
class Converter {
 public:
  Converter(const std::map<std::string, torch::Tensor>& tensors, std::string origin) : origin_(std::move(origin)) {
    for (const auto& [name, tensor] : tensors) source_[strip(name)] = tensor;
  }

  bool has(const std::string& name) const { return source_.count(name) != 0; }
  torch::Tensor take(const std::string& name) {
    const auto it = source_.find(name);
    if (it == source_.end()) throw InputError(origin_ + ": the Flux single file lacks " + name);
    used_.insert(name);
    return it->second;
  }
  void copy(const std::string& from, const std::string& to) { out_[to] = take(from); }
  // weight and bias of one linear.
  void linear(const std::string& from, const std::string& to) {
    copy(from + ".weight", to + ".weight");
    copy(from + ".bias", to + ".bias");
  }
  // Splits a fused tensor along dim 0 into the given sizes, one per target.
  void split(const std::string& from, const std::vector<int64_t>& sizes, const std::vector<std::string>& targets) {
    const auto fused = take(from);
    int64_t total = 0;
    for (const auto s : sizes) total += s;
    if (fused.size(0) != total)
      throw InputError(origin_ + ": " + from + " has " + std::to_string(fused.size(0)) + " rows, expected " +
                       std::to_string(total));
    int64_t start = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      out_[targets[i]] = fused.narrow(0, start, sizes[i]);
      start += sizes[i];
    }
  }
  // BFL's final modulation is (shift, scale); diffusers' AdaLayerNormContinuous reads (scale, shift).
  void swap_halves(const std::string& from, const std::string& to) {
    const auto halves = take(from).chunk(2, 0);
    out_[to] = torch::cat({halves[1], halves[0]}, 0);
  }
  int64_t count(const std::string& block_kind) const {
    int64_t n = 0;
    for (const auto& [name, tensor] : source_) {
      (void)tensor;
      if (name.rfind(block_kind + ".", 0) != 0) continue;
      const auto index =
          name.substr(block_kind.size() + 1, name.find('.', block_kind.size() + 1) - block_kind.size() - 1);
      n = std::max<int64_t>(n, std::stoll(index) + 1);
    }
    return n;
  }
  std::map<std::string, torch::Tensor> finish() {
    std::vector<std::string> unknown;
    for (const auto& [name, tensor] : source_) {
      (void)tensor;
      if (!used_.count(name)) unknown.push_back(name);
    }
    if (!unknown.empty()) {
      std::string list;
      for (std::size_t i = 0; i < unknown.size() && i < 12; ++i) list += (i ? ", " : "") + unknown[i];
      if (unknown.size() > 12) list += " and " + std::to_string(unknown.size() - 12) + " more";
      throw InputError(origin_ + ": tensors the Flux single-file table does not know: " + list);
    }
    return out_;
  }

 private:
  std::string origin_;
  std::map<std::string, torch::Tensor> source_, out_;
  std::set<std::string> used_;
};

}  // namespace

bool is_flux_official_naming(const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const auto n = strip(name);
    if (n.rfind("double_blocks.", 0) == 0 || n.rfind("single_blocks.", 0) == 0) return true;
  }
  return false;
}

std::map<std::string, torch::Tensor> flux_official_to_diffusers(const std::map<std::string, torch::Tensor>& tensors,
                                                                const std::string& origin) {
  Converter c(tensors, origin);
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
  for (int64_t i = 0; i < c.count("double_blocks"); ++i) {
    const std::string from = "double_blocks." + std::to_string(i) + ".",
                      to = "transformer_blocks." + std::to_string(i) + ".";
    c.linear(from + "img_mod.lin", to + "norm1.linear");
    c.linear(from + "txt_mod.lin", to + "norm1_context.linear");
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
    c.linear(from + "modulation.lin", to + "norm.linear");
    // linear1 = [q, k, v, mlp input]: the MLP rows are what the three attention projections leave.
    const int64_t mlp = c.take(from + "linear1.weight").size(0) - 3 * dim;
    for (const std::string part : {"weight", "bias"})
      c.split(from + "linear1." + part, {dim, dim, dim, mlp},
              {to + "attn.to_q." + part, to + "attn.to_k." + part, to + "attn.to_v." + part, to + "proj_mlp." + part});
    c.copy(from + "norm.query_norm.scale", to + "attn.norm_q.weight");
    c.copy(from + "norm.key_norm.scale", to + "attn.norm_k.weight");
    c.linear(from + "linear2", to + "proj_out");
  }
  c.linear("final_layer.linear", "proj_out");
  c.swap_halves("final_layer.adaLN_modulation.1.weight", "norm_out.linear.weight");
  c.swap_halves("final_layer.adaLN_modulation.1.bias", "norm_out.linear.bias");
  return c.finish();
}

}  // namespace repa::models
