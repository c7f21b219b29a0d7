// SD3 / SD3.5 single files under Stability AI's names: the fixtures' weights written in that layout
// (model.diffusion_model.joint_blocks.N.{x_block,context_block}.*, fused qkv, (shift, scale) modulations of the last
// context block and the output) load into SD3Transformer and reproduce the reference outputs.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/flux_transformer.h"
#include "core/models/sd3_official_names.h"
#include "core/models/sd3_transformer.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

io::NamedTensors official_form(const io::SafetensorsFile& file, const models::SD3TransformerConfig& config) {
  std::map<std::string, torch::Tensor> d;
  for (const auto& name : file.names())
    if (name.rfind("param.", 0) == 0) d[name.substr(6)] = file.tensor(name);
  io::NamedTensors out;
  const std::string prefix = "model.diffusion_model.";
  const auto put = [&](const std::string& name, const torch::Tensor& t) { out.emplace_back(prefix + name, t); };
  const auto linear = [&](const std::string& official, const std::string& diffusers) {
    put(official + ".weight", d.at(diffusers + ".weight"));
    put(official + ".bias", d.at(diffusers + ".bias"));
  };
  const auto fused = [&](const std::string& official, const std::string& a, const std::string& b,
                         const std::string& c) {
    for (const std::string p : {"weight", "bias"})
      put(official + "." + p, torch::cat({d.at(a + "." + p), d.at(b + "." + p), d.at(c + "." + p)}));
  };
  const auto shift_scale = [&](const std::string& official, const std::string& diffusers) {
    for (const std::string p : {"weight", "bias"}) {
      const auto halves = d.at(diffusers + "." + p).chunk(2, 0);  // diffusers: (scale, shift)
      put(official + "." + p, torch::cat({halves[1], halves[0]}));
    }
  };
  put("pos_embed", d.at("pos_embed.pos_embed"));
  linear("x_embedder.proj", "pos_embed.proj");
  linear("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1");
  linear("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2");
  linear("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1");
  linear("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2");
  linear("context_embedder", "context_embedder");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string x = "joint_blocks." + std::to_string(i) + ".x_block.",
                      c = "joint_blocks." + std::to_string(i) + ".context_block.",
                      t = "transformer_blocks." + std::to_string(i) + ".";
    const bool last = i == config.num_layers - 1;
    fused(x + "attn.qkv", t + "attn.to_q", t + "attn.to_k", t + "attn.to_v");
    fused(c + "attn.qkv", t + "attn.add_q_proj", t + "attn.add_k_proj", t + "attn.add_v_proj");
    if (d.count(t + "attn.norm_q.weight")) {
      put(x + "attn.ln_q.weight", d.at(t + "attn.norm_q.weight"));
      put(x + "attn.ln_k.weight", d.at(t + "attn.norm_k.weight"));
      put(c + "attn.ln_q.weight", d.at(t + "attn.norm_added_q.weight"));
      put(c + "attn.ln_k.weight", d.at(t + "attn.norm_added_k.weight"));
    }
    linear(x + "attn.proj", t + "attn.to_out.0");
    if (!last) linear(c + "attn.proj", t + "attn.to_add_out");
    if (d.count(t + "attn2.to_q.weight")) {
      fused(x + "attn2.qkv", t + "attn2.to_q", t + "attn2.to_k", t + "attn2.to_v");
      if (d.count(t + "attn2.norm_q.weight")) {
        put(x + "attn2.ln_q.weight", d.at(t + "attn2.norm_q.weight"));
        put(x + "attn2.ln_k.weight", d.at(t + "attn2.norm_k.weight"));
      }
      linear(x + "attn2.proj", t + "attn2.to_out.0");
    }
    linear(x + "adaLN_modulation.1", t + "norm1.linear");
    if (last)
      shift_scale(c + "adaLN_modulation.1", t + "norm1_context.linear");
    else
      linear(c + "adaLN_modulation.1", t + "norm1_context.linear");
    linear(x + "mlp.fc1", t + "ff.net.0.proj");
    linear(x + "mlp.fc2", t + "ff.net.2");
    if (!last) {
      linear(c + "mlp.fc1", t + "ff_context.net.0.proj");
      linear(c + "mlp.fc2", t + "ff_context.net.2");
    }
  }
  linear("final_layer.linear", "proj_out");
  shift_scale("final_layer.adaLN_modulation.1", "norm_out.linear");
  return out;
}

}  // namespace

TEST_CASE("SD3: an official single file (SD3.0 and SD3.5 shapes) loads and reproduces the reference output") {
  for (const std::string fixture : {"sd3_transformer_forward_1_0", "sd3_transformer_forward_1_1"}) {
    CAPTURE(fixture);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + fixture + ".safetensors"));
    const auto config = models::SD3TransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
    auto tensors = official_form(file, config);
    // An all-in-one file also carries text encoders; the transformer skips them.
    tensors.emplace_back("text_encoders.clip_l.transformer.text_model.final_layer_norm.weight", torch::ones({4}));
    test::ScratchDir dir;
    io::save_safetensors(dir.file("sd3.safetensors"), tensors);
    models::SD3Transformer model(config);
    model->load_weights(dir.file("sd3.safetensors"));
    model->eval();
    torch::NoGradGuard no_grad;
    const auto out = model->forward(file.tensor("in.hidden_states"), file.tensor("in.encoder_hidden_states"),
                                    file.tensor("in.pooled_projections"), file.tensor("in.timestep"));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  }
}

TEST_CASE("SD3: unknown and missing tensors of an official single file are named") {
  const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/sd3_transformer_forward_1_1.safetensors"));
  const auto config = models::SD3TransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
  const auto tensors = official_form(file, config);
  const std::map<std::string, torch::Tensor> map(tensors.begin(), tensors.end());
  CHECK(models::is_sd3_official_naming({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"}));
  CHECK_FALSE(models::is_sd3_official_naming({"transformer_blocks.0.attn.to_q.weight"}));
  auto extra = map;
  extra["model.diffusion_model.joint_blocks.0.x_block.attn.extra"] = torch::zeros({1});
  CHECK(contains(error_of([&] { models::sd3_official_to_diffusers(extra, "sd3.safetensors"); }),
                 "does not know: joint_blocks.0.x_block.attn.extra"));
  auto missing = map;
  missing.erase("model.diffusion_model.joint_blocks.1.context_block.mlp.fc2.bias");
  CHECK(contains(error_of([&] { models::sd3_official_to_diffusers(missing, "sd3.safetensors"); }),
                 "the SD3 single file lacks joint_blocks.1.context_block.mlp.fc2.bias"));
}

TEST_CASE("A Flux single file given to SD3, and an SD3 file given to Flux, say so") {
  const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/sd3_transformer_forward_1_0.safetensors"));
  const auto config = models::SD3TransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
  test::ScratchDir dir;
  io::save_safetensors(dir.file("flux1.safetensors"), {{"double_blocks.0.img_attn.qkv.weight", torch::zeros({3, 2})}});
  models::SD3Transformer sd3(config);
  CHECK(contains(error_of([&] { sd3->load_weights(dir.file("flux1.safetensors")); }),
                 "flux1.safetensors holds Flux-layout tensors (double_blocks.*, single_blocks.*): it is not an SD3"));
  io::save_safetensors(dir.file("sd3.safetensors"), official_form(file, config));
  models::FluxTransformerConfig flux_config;
  flux_config.num_layers = flux_config.num_single_layers = 1;
  flux_config.num_attention_heads = 1;
  flux_config.attention_head_dim = 8;
  flux_config.axes_dims_rope = {2, 2, 4};
  flux_config.joint_attention_dim = flux_config.pooled_projection_dim = flux_config.in_channels = 8;
  flux_config.out_channels = 8;
  models::FluxTransformer flux(flux_config);
  CHECK(contains(error_of([&] { flux->load_weights(dir.file("sd3.safetensors")); }),
                 "sd3.safetensors holds SD3 tensors (joint_blocks.*): it is not a Flux transformer"));
}
