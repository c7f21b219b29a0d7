// Flux.1 single files under Black Forest Labs' names: the fixture's weights written in that layout (fused qkv,
// fused single-block linear1, (shift, scale) output modulation) load into FluxTransformer and reproduce the
// reference output; unknown and missing tensors are named.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/chroma_transformer.h"
#include "core/models/flux_official_names.h"
#include "core/models/flux_transformer.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

// The fixture's diffusers weights rewritten under BFL's names (the layout of flux1-dev.safetensors).
io::NamedTensors official_form(const io::SafetensorsFile& file, int64_t doubles, int64_t singles,
                               const std::string& prefix, bool chroma = false) {
  std::map<std::string, torch::Tensor> d;
  for (const auto& name : file.names())
    if (name.rfind("param.", 0) == 0) d[name.substr(6)] = file.tensor(name);
  io::NamedTensors out;
  const auto put = [&](const std::string& name, const torch::Tensor& t) { out.emplace_back(prefix + name, t); };
  const auto linear = [&](const std::string& bfl, const std::string& diffusers) {
    put(bfl + ".weight", d.at(diffusers + ".weight"));
    put(bfl + ".bias", d.at(diffusers + ".bias"));
  };
  if (chroma) {
    linear("distilled_guidance_layer.in_proj", "distilled_guidance_layer.in_proj");
    linear("distilled_guidance_layer.out_proj", "distilled_guidance_layer.out_proj");
    for (int64_t i = 0; d.count("distilled_guidance_layer.norms." + std::to_string(i) + ".weight"); ++i) {
      const std::string l = "distilled_guidance_layer.layers." + std::to_string(i) + ".";
      linear(l + "in_layer", l + "linear_1");
      linear(l + "out_layer", l + "linear_2");
      put("distilled_guidance_layer.norms." + std::to_string(i) + ".scale",
          d.at("distilled_guidance_layer.norms." + std::to_string(i) + ".weight"));
    }
  } else {
    linear("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1");
    linear("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2");
    linear("vector_in.in_layer", "time_text_embed.text_embedder.linear_1");
    linear("vector_in.out_layer", "time_text_embed.text_embedder.linear_2");
    if (d.count("time_text_embed.guidance_embedder.linear_1.weight")) {
      linear("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1");
      linear("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2");
    }
  }
  linear("txt_in", "context_embedder");
  linear("img_in", "x_embedder");
  for (int64_t i = 0; i < doubles; ++i) {
    const std::string b = "double_blocks." + std::to_string(i) + ".",
                      t = "transformer_blocks." + std::to_string(i) + ".";
    if (!chroma) {
      linear(b + "img_mod.lin", t + "norm1.linear");
      linear(b + "txt_mod.lin", t + "norm1_context.linear");
    }
    for (const std::string p : {"weight", "bias"}) {
      put(b + "img_attn.qkv." + p,
          torch::cat({d.at(t + "attn.to_q." + p), d.at(t + "attn.to_k." + p), d.at(t + "attn.to_v." + p)}));
      put(b + "txt_attn.qkv." + p, torch::cat({d.at(t + "attn.add_q_proj." + p), d.at(t + "attn.add_k_proj." + p),
                                               d.at(t + "attn.add_v_proj." + p)}));
    }
    put(b + "img_attn.norm.query_norm.scale", d.at(t + "attn.norm_q.weight"));
    put(b + "img_attn.norm.key_norm.scale", d.at(t + "attn.norm_k.weight"));
    put(b + "txt_attn.norm.query_norm.scale", d.at(t + "attn.norm_added_q.weight"));
    put(b + "txt_attn.norm.key_norm.scale", d.at(t + "attn.norm_added_k.weight"));
    linear(b + "img_mlp.0", t + "ff.net.0.proj");
    linear(b + "img_mlp.2", t + "ff.net.2");
    linear(b + "txt_mlp.0", t + "ff_context.net.0.proj");
    linear(b + "txt_mlp.2", t + "ff_context.net.2");
    linear(b + "img_attn.proj", t + "attn.to_out.0");
    linear(b + "txt_attn.proj", t + "attn.to_add_out");
  }
  for (int64_t i = 0; i < singles; ++i) {
    const std::string b = "single_blocks." + std::to_string(i) + ".",
                      t = "single_transformer_blocks." + std::to_string(i) + ".";
    if (!chroma) linear(b + "modulation.lin", t + "norm.linear");
    for (const std::string p : {"weight", "bias"})
      put(b + "linear1." + p, torch::cat({d.at(t + "attn.to_q." + p), d.at(t + "attn.to_k." + p),
                                          d.at(t + "attn.to_v." + p), d.at(t + "proj_mlp." + p)}));
    put(b + "norm.query_norm.scale", d.at(t + "attn.norm_q.weight"));
    put(b + "norm.key_norm.scale", d.at(t + "attn.norm_k.weight"));
    linear(b + "linear2", t + "proj_out");
  }
  linear("final_layer.linear", "proj_out");
  for (const std::string p : {"weight", "bias"}) {
    if (chroma) break;  // Chroma's output modulation comes from the approximator
    const auto scale_shift = d.at("norm_out.linear." + p).chunk(2, 0);
    put("final_layer.adaLN_modulation.1." + p, torch::cat({scale_shift[1], scale_shift[0]}));  // BFL: shift first
  }
  return out;
}

}  // namespace

TEST_CASE("Flux: a Black Forest Labs single file loads and reproduces the reference output") {
  for (const std::string fixture : {"flux_transformer_forward_1_0", "flux_transformer_forward_1_1"}) {
    CAPTURE(fixture);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + fixture + ".safetensors"));
    const auto config = models::FluxTransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
    test::ScratchDir dir;
    const auto path = dir.file("flux1.safetensors");
    // With and without the prefix some single files carry.
    io::save_safetensors(path, official_form(file, config.num_layers, config.num_single_layers,
                                             fixture.back() == '0' ? "model.diffusion_model." : ""));
    models::FluxTransformer model(config);
    model->load_weights(path);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto in = [&](const std::string& name) {
      return file.contains("in." + name) ? file.tensor("in." + name) : torch::Tensor();
    };
    const auto out = model->forward(in("hidden_states"), in("encoder_hidden_states"), in("pooled_projections"),
                                    in("timestep"), in("img_ids"), in("txt_ids"), in("guidance"));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  }
}

TEST_CASE("Flux: unknown and missing tensors of a BFL single file are named") {
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/flux_transformer_forward_1_0.safetensors"));
  const auto config = models::FluxTransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
  auto tensors = official_form(file, config.num_layers, config.num_single_layers, "");
  std::map<std::string, torch::Tensor> map(tensors.begin(), tensors.end());
  CHECK(models::is_flux_official_naming({"model.diffusion_model.double_blocks.0.img_mod.lin.weight"}));
  CHECK_FALSE(models::is_flux_official_naming({"transformer_blocks.0.norm1.linear.weight"}));

  auto extra = map;
  extra["double_blocks.0.img_attn.lora_up.weight"] = torch::zeros({2});
  CHECK(contains(error_of([&] { models::flux_official_to_diffusers(extra, "flux1.safetensors"); }),
                 "does not know: double_blocks.0.img_attn.lora_up.weight"));
  auto missing = map;
  missing.erase("single_blocks.1.linear1.bias");
  CHECK(contains(error_of([&] { models::flux_official_to_diffusers(missing, "flux1.safetensors"); }),
                 "flux1.safetensors: the Flux single file lacks single_blocks.1.linear1.bias"));
  auto bad = map;
  bad["double_blocks.1.img_attn.qkv.weight"] = torch::zeros({95, 32});
  CHECK(contains(error_of([&] { models::flux_official_to_diffusers(bad, "flux1.safetensors"); }),
                 "double_blocks.1.img_attn.qkv.weight has 95 rows, expected 96"));
}

TEST_CASE("Chroma: an official single file loads and reproduces the reference output") {
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/chroma_transformer_forward_1_0.safetensors"));
  const auto config = models::ChromaTransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
  test::ScratchDir dir;
  io::save_safetensors(dir.file("chroma.safetensors"),
                       official_form(file, config.num_layers, config.num_single_layers, "", /*chroma=*/true));
  models::ChromaTransformer model(config);
  model->load_weights(dir.file("chroma.safetensors"));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto out = model->forward(file.tensor("in.hidden_states"), file.tensor("in.encoder_hidden_states"),
                                  file.tensor("in.timestep"), file.tensor("in.img_ids"), file.tensor("in.txt_ids"),
                                  file.tensor("in.attention_mask"));
  CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  // A Flux file is not a Chroma file: its modulation tensors are named as unknown.
  const auto flux =
      io::SafetensorsFile::open(test::fixture_path("text2image/flux_transformer_forward_1_0.safetensors"));
  const auto flux_tensors = official_form(flux, 2, 2, "");
  const std::map<std::string, torch::Tensor> map(flux_tensors.begin(), flux_tensors.end());
  CHECK(contains(error_of([&] { models::chroma_official_to_diffusers(map, "flux1.safetensors"); }),
                 "the Chroma single file lacks distilled_guidance_layer.in_proj.weight"));
}
