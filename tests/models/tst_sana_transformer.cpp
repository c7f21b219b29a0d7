// SanaTransformer2DModel: diffusers' names, the fixtures' forward, the ReLU linear attention against its quadratic
// form, the REPA tap (its errors and where its gradient goes), weight files with their mismatches named, and config
// and input errors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/dit_weights.h"
#include "core/models/sana_official_names.h"
#include "core/models/sana_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/fixture_params.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

nlohmann::json tiny_config(bool sprint = false) {
  auto c = nlohmann::json::parse(R"({"attention_bias": false, "attention_head_dim": 8, "caption_channels": 12,
    "cross_attention_dim": 16, "cross_attention_head_dim": 8, "guidance_embeds": false, "in_channels": 4,
    "mlp_ratio": 2.5, "norm_elementwise_affine": false, "norm_eps": 1e-06, "num_attention_heads": 2,
    "num_cross_attention_heads": 2, "num_layers": 3, "out_channels": 4, "patch_size": 1, "qk_norm": null,
    "sample_size": 8})");
  if (sprint) {
    c["guidance_embeds"] = true;
    c["qk_norm"] = "rms_norm_across_heads";
  }
  return c;
}

models::SanaInputs tiny_inputs() {
  models::SanaInputs in;
  in.hidden_states = torch::randn({2, 4, 6, 4});  // a 6x4 token grid
  in.encoder_hidden_states = torch::randn({2, 5, 12});
  in.timestep = torch::tensor({10.0, 900.0});
  in.encoder_attention_mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}, torch::kLong);
  return in;
}

}  // namespace

TEST_CASE("parameter names are diffusers' keys; the fixtures' forward and tap are reproduced") {
  for (const std::string name : {"sana_transformer_forward_1_0", "sana_transformer_forward_1_1"}) {
    CAPTURE(name);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + name + ".safetensors"));
    models::SanaTransformer model(
        models::SanaTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config"))));
    auto params = test::fixture_params(file);
    std::set<std::string> want, got;
    for (const auto& item : params) want.insert(item.first);
    for (const auto& item : nn::module_state(*model)) got.insert(item.first);
    CHECK(got == want);

    models::dit::load_weights(*model, params, name);
    model->eval();
    models::SanaInputs in;
    in.hidden_states = file.tensor("in.hidden_states");
    in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
    in.timestep = file.tensor("in.timestep");
    in.encoder_attention_mask = file.tensor("in.encoder_attention_mask");
    if (file.contains("in.guidance")) in.guidance = file.tensor("in.guidance");
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, std::stoll(*file.meta("crepa_block_index")));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
  }
}

TEST_CASE("the ReLU linear attention equals its quadratic form") {
  torch::manual_seed(4);
  for (const bool qk_norm : {false, true}) {
    CAPTURE(qk_norm);
    models::dit::AttentionOptions o;
    o.query_dim = 16;
    o.heads = 2;
    o.dim_head = 8;
    o.qk_norm = qk_norm ? models::dit::QKNorm::RMSNormAcrossHeads : models::dit::QKNorm::None;
    models::dit::Attention attention(o);
    if (qk_norm) {
      torch::NoGradGuard no_grad;
      attention->rms_norm_q->weight.uniform_(0.5, 1.5);
    }
    const auto x = torch::randn({2, 7, 16});
    torch::NoGradGuard no_grad;
    torch::Tensor q, k, v;
    attention->project(x, torch::Tensor(), q, k, v);
    // Per head: out_i = Σ_j (φ(q_i)·φ(k_j)) v_j / Σ_j φ(q_i)·φ(k_j), φ = ReLU.
    const auto split = [](const torch::Tensor& t) { return t.view({2, 7, 2, 8}).transpose(1, 2); };
    const auto weights = torch::matmul(torch::relu(split(q)), torch::relu(split(k)).transpose(-2, -1));
    const auto attended = torch::matmul(weights, split(v)) / (weights.sum(-1, true) + 1e-15);
    const auto want = attention->to_out(attended.transpose(1, 2).reshape({2, 7, 16}));
    CHECK(torch::allclose(models::linear_attention(*attention, x), want, 1e-5, 1e-6));
  }
}

TEST_CASE("a tap past the last block names how many double- and single-stream blocks there are") {
  torch::manual_seed(1);
  models::SanaTransformer model(models::SanaTransformerConfig::from_diffusers(tiny_config()));
  const auto in = tiny_inputs();
  const auto message = error_of([&] { model->forward(in, 3); });
  CHECK(contains(message, "crepa_block_index 3"));
  CHECK(contains(message, "0 double-stream and 3 single-stream blocks"));
  torch::NoGradGuard no_grad;
  const auto out = model->forward(in, 0);
  CHECK(out.tapped.sizes() == torch::IntArrayRef({2, 24, 16}));  // one token per latent pixel, raster order
  CHECK(out.prediction.sizes() == torch::IntArrayRef({2, 4, 6, 4}));
}

TEST_CASE("the tap's gradient reaches the blocks up to the tap and nothing after it; checkpointing agrees") {
  torch::manual_seed(2);
  models::SanaTransformer model(models::SanaTransformerConfig::from_diffusers(tiny_config(true)));
  model->train();
  auto in = tiny_inputs();
  in.guidance = torch::tensor({4.5, 3.0});
  model->forward(in, 1).tapped.pow(2).mean().backward();
  const auto grad_norm = [](const torch::Tensor& p) {
    return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
  };
  CHECK(grad_norm(model->patch_embed->proj->weight) > 0);
  CHECK(grad_norm(model->time_embed_guidance->guidance_embedder->linear_1->weight) > 0);
  CHECK(grad_norm(model->caption_norm->weight) > 0);
  CHECK(grad_norm(model->blocks[0]->ff->conv_depth->weight) > 0);
  CHECK(grad_norm(model->blocks[1]->attn1->rms_norm_q->weight) > 0);
  CHECK(grad_norm(model->blocks[1]->ff->conv_point->weight) > 0);
  CHECK(grad_norm(model->blocks[2]->attn1->to_q->weight) == 0);
  CHECK(grad_norm(model->proj_out->weight) == 0);

  std::vector<torch::Tensor> plain;
  for (auto& p : model->parameters()) plain.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  model->zero_grad();
  model->gradient_checkpointing = true;
  model->forward(in, 1).tapped.pow(2).mean().backward();
  const auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto g = params[i].grad().defined() ? params[i].grad() : torch::zeros_like(params[i]);
    CHECK(torch::allclose(g, plain[i], 1e-5, 1e-6));
  }
}

TEST_CASE("a weight file with a mis-shaped tensor is named; a good one loads") {
  torch::manual_seed(3);
  test::ScratchDir dir;
  models::SanaTransformer source(models::SanaTransformerConfig::from_diffusers(tiny_config()));
  io::NamedTensors tensors;
  for (const auto& [name, tensor] : nn::module_state(*source)) tensors.emplace_back(name, tensor);
  io::save_safetensors(dir.file("good.safetensors"), tensors);
  models::SanaTransformer loaded(models::SanaTransformerConfig::from_diffusers(tiny_config()));
  models::dit::load_weights(*loaded, dir.file("good.safetensors"));
  source->eval(), loaded->eval();
  {
    torch::NoGradGuard no_grad;
    const auto in = tiny_inputs();
    CHECK(torch::equal(source->forward(in).prediction, loaded->forward(in).prediction));
  }
  io::NamedTensors broken;
  for (const auto& [name, tensor] : tensors)
    if (name != "caption_norm.weight")
      broken.emplace_back(name,
                          name == "transformer_blocks.2.ff.conv_depth.weight" ? torch::zeros({80, 1, 5, 5}) : tensor);
  io::save_safetensors(dir.file("broken.safetensors"), broken);
  const auto message = error_of([&] { models::dit::load_weights(*loaded, dir.file("broken.safetensors")); });
  CHECK(contains(message, "broken.safetensors"));
  CHECK(contains(message, "transformer_blocks.2.ff.conv_depth.weight: checkpoint [80, 1, 5, 5], model [80, 1, 3, 3]"));
  CHECK(contains(message, "missing (1)"));
  CHECK(contains(message, "caption_norm.weight"));
}

TEST_CASE("config values the class cannot run, and inputs that do not fit, are named") {
  const auto with = [](const std::string& key, const nlohmann::json& value) {
    auto c = tiny_config();
    c[key] = value;
    return error_of([&] { models::SanaTransformerConfig::from_diffusers(c); });
  };
  CHECK(contains(with("qk_norm", "rms_norm"), "'qk_norm'"));
  CHECK(contains(with("qk_norm", "bogus"), "'qk_norm'"));
  CHECK(contains(with("cross_attention_dim", nullptr), "'cross_attention_dim'"));
  CHECK(contains(with("cross_attention_dim", 24), "'cross_attention_dim'"));
  CHECK(contains(with("mlp_ratio", "2.5"), "'mlp_ratio'"));
  // diffusers' defaults: out_channels null is in_channels; interpolation_scale adds sin-cos positions.
  auto c = tiny_config();
  c["out_channels"] = nullptr;
  CHECK(models::SanaTransformerConfig::from_diffusers(c).out_channels == 4);

  models::SanaTransformer plain(models::SanaTransformerConfig::from_diffusers(tiny_config()));
  models::SanaTransformer sprint(models::SanaTransformerConfig::from_diffusers(tiny_config(true)));
  auto in = tiny_inputs();
  CHECK(contains(error_of([&] { sprint->forward(in); }), "guidance (B,) is required"));
  in.guidance = torch::tensor({4.5, 3.0});
  CHECK(contains(error_of([&] { plain->forward(in); }), "guidance_embeds is false"));

  c = tiny_config();
  c["interpolation_scale"] = 1.0;
  models::SanaTransformer positioned(models::SanaTransformerConfig::from_diffusers(c));
  torch::manual_seed(5);
  models::SanaTransformer unpositioned(models::SanaTransformerConfig::from_diffusers(tiny_config()));
  std::map<std::string, torch::Tensor> weights = nn::module_state(*unpositioned);
  models::dit::load_weights(*positioned, weights, "unpositioned");
  torch::NoGradGuard no_grad;
  auto plain_in = tiny_inputs();
  CHECK_FALSE(torch::allclose(positioned->forward(plain_in).prediction, unpositioned->forward(plain_in).prediction));
}

TEST_CASE("a bf16 model follows the fp32 one") {
  torch::manual_seed(7);
  models::SanaTransformer model(models::SanaTransformerConfig::from_diffusers(tiny_config(true)));
  model->eval();
  auto in = tiny_inputs();
  in.guidance = torch::tensor({4.5, 3.0});
  torch::NoGradGuard no_grad;
  const auto want = model->forward(in, 1);
  model->to(torch::kBFloat16);
  auto half = in;
  half.hidden_states = in.hidden_states.to(torch::kBFloat16);
  half.encoder_hidden_states = in.encoder_hidden_states.to(torch::kBFloat16);
  const auto got = model->forward(half, 1);
  CHECK(bool(got.prediction.scalar_type() == torch::kBFloat16));
  CHECK(bool(got.tapped.scalar_type() == torch::kBFloat16));
  CHECK(torch::allclose(got.prediction.to(torch::kFloat32), want.prediction, 0.05, 0.05));
  CHECK(torch::allclose(got.tapped.to(torch::kFloat32), want.tapped, 0.05, 0.05));
}

TEST_CASE("a single file under the official Sana names reproduces the fixtures") {
  test::ScratchDir dir;
  for (const std::string name : {"sana_transformer_forward_1_0", "sana_transformer_forward_1_1"}) {
    CAPTURE(name);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + name + ".safetensors"));
    const auto config = models::SanaTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config")));
    const auto p = [&](const std::string& key) { return file.tensor("param." + key); };
    // The official layout, written out by hand (the second file also under ComfyUI's prefix): fused qkv = [q; k; v],
    // kv_linear = [k; v], MBConv names, cfg_embedder for the guidance embedding.
    const std::string prefix = config.guidance_embeds ? "model.diffusion_model." : "";
    const std::string t =
        config.guidance_embeds ? "time_embed.timestep_embedder." : "time_embed.emb.timestep_embedder.";
    io::NamedTensors official;
    const auto put = [&](const std::string& key, const torch::Tensor& v) { official.emplace_back(prefix + key, v); };
    for (const std::string leaf : {"weight", "bias"}) {
      put("x_embedder.proj." + leaf, p("patch_embed.proj." + leaf));
      put("y_embedder.y_proj.fc1." + leaf, p("caption_projection.linear_1." + leaf));
      put("y_embedder.y_proj.fc2." + leaf, p("caption_projection.linear_2." + leaf));
      put("t_embedder.mlp.0." + leaf, p(t + "linear_1." + leaf));
      put("t_embedder.mlp.2." + leaf, p(t + "linear_2." + leaf));
      if (config.guidance_embeds) {
        put("cfg_embedder.mlp.0." + leaf, p("time_embed.guidance_embedder.linear_1." + leaf));
        put("cfg_embedder.mlp.2." + leaf, p("time_embed.guidance_embedder.linear_2." + leaf));
      }
      put("t_block.1." + leaf, p("time_embed.linear." + leaf));
      put("final_layer.linear." + leaf, p("proj_out." + leaf));
      for (int i = 0; i < 3; ++i) {
        const std::string o = "blocks." + std::to_string(i) + ".", d = "transformer_blocks." + std::to_string(i) + ".";
        if (leaf == "weight") {
          put(o + "attn.qkv.weight",
              torch::cat({p(d + "attn1.to_q.weight"), p(d + "attn1.to_k.weight"), p(d + "attn1.to_v.weight")}));
          put(o + "scale_shift_table", p(d + "scale_shift_table"));
          put(o + "mlp.point_conv.conv.weight", p(d + "ff.conv_point.weight"));
          if (config.qk_norm.size()) {
            put(o + "attn.q_norm.weight", p(d + "attn1.norm_q.weight"));
            put(o + "attn.k_norm.weight", p(d + "attn1.norm_k.weight"));
            put(o + "cross_attn.q_norm.weight", p(d + "attn2.norm_q.weight"));
            put(o + "cross_attn.k_norm.weight", p(d + "attn2.norm_k.weight"));
          }
        }
        put(o + "attn.proj." + leaf, p(d + "attn1.to_out.0." + leaf));
        put(o + "cross_attn.q_linear." + leaf, p(d + "attn2.to_q." + leaf));
        put(o + "cross_attn.kv_linear." + leaf, torch::cat({p(d + "attn2.to_k." + leaf), p(d + "attn2.to_v." + leaf)}));
        put(o + "cross_attn.proj." + leaf, p(d + "attn2.to_out.0." + leaf));
        put(o + "mlp.inverted_conv.conv." + leaf, p(d + "ff.conv_inverted." + leaf));
        put(o + "mlp.depth_conv.conv." + leaf, p(d + "ff.conv_depth." + leaf));
      }
    }
    put("attention_y_norm.weight", p("caption_norm.weight"));
    put("final_layer.scale_shift_table", p("scale_shift_table"));
    put("pos_embed", torch::zeros({1, 36, 32}));
    put("y_embedder.y_embedding", torch::zeros({6, 24}));
    io::save_safetensors(dir.file(name + ".safetensors"), official);

    models::SanaTransformer model(config);
    models::load_sana_weights(model, dir.file(name + ".safetensors"));
    model->eval();
    models::SanaInputs in;
    in.hidden_states = file.tensor("in.hidden_states");
    in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
    in.timestep = file.tensor("in.timestep");
    in.encoder_attention_mask = file.tensor("in.encoder_attention_mask");
    if (file.contains("in.guidance")) in.guidance = file.tensor("in.guidance");
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, 1);
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
  }
}
