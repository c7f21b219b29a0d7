// Lumina2Transformer2DModel: diffusers' names, the fixtures' forward and tap, the REPA tap over `layers` (the joint
// sequence with caption and padding rows, its bounds, where its gradient goes), ragged captions masked exactly, weight
// files with their mismatches named, and config / input errors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/dit_weights.h"
#include "core/models/lumina2_official_names.h"
#include "core/models/lumina2_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/fixture_params.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

nlohmann::json tiny_config() {
  return nlohmann::json::parse(R"({"axes_dim_rope": [2, 2, 4], "axes_lens": [16, 8, 8], "cap_feat_dim": 12,
    "ffn_dim_multiplier": null, "hidden_size": 32, "in_channels": 4, "multiple_of": 16, "norm_eps": 1e-05,
    "num_attention_heads": 4, "num_kv_heads": 2, "num_layers": 3, "num_refiner_layers": 1, "out_channels": null,
    "patch_size": 2, "sample_size": 8})");
}

// Two samples with captions of 5 and 3 tokens (padded to 6) on a 3x2 token grid.
models::Lumina2Inputs tiny_inputs() {
  models::Lumina2Inputs in;
  in.hidden_states = torch::randn({2, 4, 6, 4});
  in.timestep = torch::tensor({0.2, 0.7});
  in.encoder_hidden_states = torch::randn({2, 6, 12});
  in.encoder_attention_mask = torch::tensor({1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0}).reshape({2, 6});
  return in;
}

models::Lumina2Inputs sample_of(const models::Lumina2Inputs& in, int64_t b, int64_t caption_tokens) {
  models::Lumina2Inputs one;
  one.hidden_states = in.hidden_states.narrow(0, b, 1);
  one.timestep = in.timestep.narrow(0, b, 1);
  one.encoder_hidden_states = in.encoder_hidden_states.narrow(0, b, 1).narrow(1, 0, caption_tokens);
  one.encoder_attention_mask = torch::ones({1, caption_tokens}, torch::kLong);
  return one;
}

double grad_norm(const torch::Tensor& p) {
  return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
}

}  // namespace

TEST_CASE("parameter names are diffusers' keys; the fixtures' forward and taps are reproduced") {
  for (const std::string name : {"lumina2_transformer_forward_1_0", "lumina2_transformer_forward_1_1"}) {
    CAPTURE(name);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + name + ".safetensors"));
    models::Lumina2Transformer model(
        models::Lumina2TransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config"))));
    auto params = test::fixture_params(file);
    std::set<std::string> want, got;
    for (const auto& item : params) want.insert(item.first);
    for (const auto& item : nn::module_state(*model)) got.insert(item.first);
    CHECK(got == want);

    models::dit::load_weights(*model, params, name);
    model->eval();
    models::Lumina2Inputs in;
    in.hidden_states = file.tensor("in.hidden_states");
    in.timestep = file.tensor("in.timestep");
    in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
    in.encoder_attention_mask = file.tensor("in.encoder_attention_mask");
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, std::stoll(*file.meta("crepa_block_index")));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
  }
}

TEST_CASE("taps count the joint layers only and hold caption, image and padding rows; past the last is named") {
  torch::manual_seed(1);
  models::Lumina2Transformer model(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  const auto in = tiny_inputs();
  const auto message = error_of([&] { model->forward(in, 3); });
  CHECK(contains(message, "crepa_block_index 3"));
  CHECK(contains(message, "3 double-stream and 0 single-stream blocks"));
  CHECK(contains(message, "refiners are not counted"));
  torch::NoGradGuard no_grad;
  for (int64_t tap = 0; tap < 3; ++tap) {
    CAPTURE(tap);
    CHECK(model->forward(in, tap).tapped.sizes() == torch::IntArrayRef({2, 5 + 6, 32}));  // max_b(L_b + h·w)
  }
  // The last layer's tap is what the output layer reads: sample b's image rows start after its L_b caption rows.
  const auto last = model->forward(in, 2);
  const auto temb =
      model->timestep_embedder(models::dit::timestep_features(in.timestep, 256, true, 0.0).to(torch::kFloat32));
  const auto scale = model->norm_out_linear_1(torch::silu(temb));
  const auto tokens =
      model->norm_out_linear_2(torch::layer_norm(last.tapped, {32}, {}, {}, 1e-6) * (1 + scale.unsqueeze(1)));
  const int64_t lengths[] = {5, 3};
  for (int64_t b = 0; b < 2; ++b) {
    const auto image = tokens[b].narrow(0, lengths[b], 6).reshape({3, 2, 2, 2, 4}).permute({4, 0, 2, 1, 3});
    CHECK(torch::allclose(image.reshape({4, 6, 4}), last.prediction[b], 1e-5, 1e-6));
  }
}

TEST_CASE("ragged captions: each sample equals its own unpadded run; caption padding values are never read") {
  torch::manual_seed(2);
  models::Lumina2Transformer model(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = tiny_inputs();
  const auto batched = model->forward(in, 1);
  const int64_t lengths[] = {5, 3};
  for (int64_t b = 0; b < 2; ++b) {
    CAPTURE(b);
    const auto alone = model->forward(sample_of(in, b, lengths[b]), 1);
    CHECK(torch::allclose(batched.prediction[b], alone.prediction[0], 1e-5, 1e-5));
    // The tap's caption and image rows match; the shorter sample's padding rows exist only in the batch.
    CHECK(torch::allclose(batched.tapped[b].narrow(0, 0, lengths[b] + 6), alone.tapped[0], 1e-5, 1e-5));
  }
  in.encoder_hidden_states.index_put_({1, torch::indexing::Slice(3, 6)}, 100.0);
  CHECK(torch::allclose(model->forward(in, 1).prediction, batched.prediction, 1e-6, 1e-6));
}

TEST_CASE(
    "the tap's gradient reaches the refiners and the layers up to the tap and nothing after; checkpointing "
    "agrees") {
  torch::manual_seed(3);
  models::Lumina2Transformer model(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  model->train();
  const auto in = tiny_inputs();
  model->forward(in, 1).tapped.pow(2).mean().backward();
  CHECK(grad_norm(model->x_embedder->weight) > 0);
  CHECK(grad_norm(model->caption_linear->weight) > 0);
  CHECK(grad_norm(model->timestep_embedder->linear_1->weight) > 0);
  CHECK(grad_norm(model->context_refiner[0]->feed_forward->linear_2->weight) > 0);
  CHECK(grad_norm(model->noise_refiner[0]->norm1_linear->weight) > 0);
  CHECK(grad_norm(model->layers[1]->attn->to_k->weight) > 0);
  CHECK(grad_norm(model->layers[2]->attn->to_q->weight) == 0);
  CHECK(grad_norm(model->norm_out_linear_2->weight) == 0);

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

TEST_CASE("a weight file with missing, unexpected and mis-shaped tensors is named") {
  torch::manual_seed(4);
  test::ScratchDir dir;
  models::Lumina2Transformer source(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  io::NamedTensors tensors;
  for (const auto& [name, tensor] : nn::module_state(*source)) {
    if (name == "layers.2.ffn_norm2.weight") continue;
    tensors.emplace_back(name, name == "layers.0.attn.to_k.weight" ? torch::zeros({32, 32}) : tensor);
  }
  tensors.emplace_back("layers.0.attn.to_k.bias", torch::zeros({16}));
  io::save_safetensors(dir.file("broken.safetensors"), tensors);
  models::Lumina2Transformer loaded(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  const auto message = error_of([&] { models::dit::load_weights(*loaded, dir.file("broken.safetensors")); });
  CHECK(contains(message, "broken.safetensors"));
  CHECK(contains(message, "layers.0.attn.to_k.weight: checkpoint [32, 32], model [16, 32]"));  // 2 kv heads of 8
  CHECK(contains(message, "missing (1)"));
  CHECK(contains(message, "layers.2.ffn_norm2.weight"));
  CHECK(contains(message, "unexpected (1)"));
  CHECK(contains(message, "layers.0.attn.to_k.bias"));
}

TEST_CASE("config values the class cannot build, and inputs that do not fit, are named") {
  const auto with = [](const std::string& key, const nlohmann::json& value) {
    auto c = tiny_config();
    c[key] = value;
    return error_of([&] { models::Lumina2TransformerConfig::from_diffusers(c); });
  };
  CHECK(contains(with("num_kv_heads", 3), "'num_kv_heads'"));
  CHECK(contains(with("axes_dim_rope", nlohmann::json::array({2, 2, 2})), "sums to 6"));
  CHECK(contains(with("axes_lens", nlohmann::json::array({16, 8})), "'axes_lens'"));
  CHECK(contains(with("hidden_size", 30), "'hidden_size'"));
  CHECK(models::Lumina2TransformerConfig::from_diffusers(tiny_config()).out_channels == 4);  // null: in_channels

  torch::manual_seed(5);
  models::Lumina2Transformer model(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  auto in = tiny_inputs();
  in.encoder_attention_mask = torch::tensor({1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0}).reshape({2, 6});
  CHECK(contains(error_of([&] { model->forward(in); }), "sample 0 is not a prefix of ones"));
  in.encoder_attention_mask = torch::zeros({2, 6}, torch::kLong);
  CHECK(contains(error_of([&] { model->forward(in); }), "has no caption token"));
  in = tiny_inputs();
  in.hidden_states = torch::randn({2, 4, 18, 4});  // 9 token rows, the table has 8
  CHECK(contains(error_of([&] { model->forward(in); }), "'axes_lens' = [16, 8, 8]"));
  in = tiny_inputs();
  in.encoder_hidden_states = torch::randn({2, 6, 10});
  CHECK(contains(error_of([&] { model->forward(in); }), "encoder_hidden_states must be (B, T, 12)"));
}

TEST_CASE("in bf16 the forward keeps its dtype and stays close to fp32") {
  torch::manual_seed(8);
  models::Lumina2Transformer model(models::Lumina2TransformerConfig::from_diffusers(tiny_config()));
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = tiny_inputs();
  const auto reference = model->forward(in, 1);
  model->to(torch::kBFloat16);
  in.hidden_states = in.hidden_states.to(torch::kBFloat16);
  in.encoder_hidden_states = in.encoder_hidden_states.to(torch::kBFloat16);
  const auto out = model->forward(in, 1);
  CHECK((out.prediction.scalar_type() == torch::kBFloat16));
  CHECK((out.tapped.scalar_type() == torch::kBFloat16));
  const auto relative = [](const torch::Tensor& got, const torch::Tensor& want) {
    return ((got.to(torch::kFloat32) - want).abs().max() / want.abs().max()).item<double>();
  };
  CHECK(relative(out.prediction, reference.prediction) < 0.05);
  CHECK(relative(out.tapped, reference.tapped) < 0.05);
}

namespace {

// The fixture's diffusers names written back as Alpha-VLLM's (the inverse of diffusers' convert_lumina2_to_diffusers):
// q, k, v fused into attention.qkv, the norms and feed-forward under their original names, ComfyUI's prefix.
io::NamedTensors official_from_diffusers(const std::map<std::string, torch::Tensor>& params) {
  const std::vector<std::pair<std::string, std::string>> renames = {
      {"time_caption_embed.caption_embedder.", "cap_embedder."},
      {"time_caption_embed.timestep_embedder.linear_1.", "t_embedder.mlp.0."},
      {"time_caption_embed.timestep_embedder.linear_2.", "t_embedder.mlp.2."},
      {"norm_out.linear_1.", "final_layer.adaLN_modulation.1."},
      {"norm_out.linear_2.", "final_layer.linear."},
      {"attn.to_out.0.", "attention.out."},
      {"attn.norm_q.", "attention.q_norm."},
      {"attn.norm_k.", "attention.k_norm."},
      {"feed_forward.linear_1.", "feed_forward.w1."},
      {"feed_forward.linear_2.", "feed_forward.w2."},
      {"feed_forward.linear_3.", "feed_forward.w3."},
      {".norm1.linear.", ".adaLN_modulation.1."},
      {".norm1.norm.", ".attention_norm1."},
      {".norm1.", ".attention_norm1."},
      {".norm2.", ".attention_norm2."}};
  io::NamedTensors out;
  for (const auto& [name, tensor] : params) {
    if (contains(name, "attn.to_k.") || contains(name, "attn.to_v.")) continue;
    std::string renamed = name;
    if (contains(name, "attn.to_q.")) {
      const auto block = name.substr(0, name.find("attn.to_q."));
      renamed = block + "attention.qkv.weight";
      out.emplace_back(
          "model.diffusion_model." + renamed,
          torch::cat({tensor, params.at(block + "attn.to_k.weight"), params.at(block + "attn.to_v.weight")}, 0));
      continue;
    }
    for (const auto& [from, to] : renames) {
      const auto at = renamed.find(from);
      if (at != std::string::npos) {
        renamed.replace(at, from.size(), to);
        break;
      }
    }
    out.emplace_back("model.diffusion_model." + renamed, tensor);
  }
  out.emplace_back("model.diffusion_model.norm_final.weight", torch::ones({64}));  // unused by the forward
  return out;
}

}  // namespace

TEST_CASE("an official Lumina-Image 2.0 single file loads through the table and reproduces the fixture") {
  test::ScratchDir dir;
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/lumina2_transformer_forward_1_1.safetensors"));
  auto params = test::fixture_params(file);
  auto official = official_from_diffusers(params);
  io::save_safetensors(dir.file("lumina2_official.safetensors"), official);
  const auto config = models::Lumina2TransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config")));
  models::Lumina2Transformer model(config);
  models::load_lumina2_weights(model, dir.file("lumina2_official.safetensors"));
  model->eval();
  models::Lumina2Inputs in;
  in.hidden_states = file.tensor("in.hidden_states");
  in.timestep = file.tensor("in.timestep");
  in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
  in.encoder_attention_mask = file.tensor("in.encoder_attention_mask");
  torch::NoGradGuard no_grad;
  const auto out = model->forward(in, 1);
  CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));

  // The diffusers-named file loads through the same entry point.
  io::NamedTensors diffusers_named(params.begin(), params.end());
  io::save_safetensors(dir.file("diffusers.safetensors"), diffusers_named);
  models::Lumina2Transformer same(config);
  models::load_lumina2_weights(same, dir.file("diffusers.safetensors"));
  CHECK(torch::equal(same->forward(in, 1).prediction, out.prediction));

  // A tensor the table does not know, and a missing one, are named with the file.
  official.emplace_back("model.diffusion_model.layers.0.attention.rope.weight", torch::zeros({2}));
  io::save_safetensors(dir.file("extra.safetensors"), official);
  const auto message = error_of([&] { models::load_lumina2_weights(model, dir.file("extra.safetensors")); });
  CHECK(contains(message, "extra.safetensors"));
  CHECK(contains(message, "layers.0.attention.rope.weight"));
  official.pop_back();
  io::NamedTensors lacking;
  for (const auto& item : official)
    if (item.first != "model.diffusion_model.layers.2.ffn_norm1.weight") lacking.push_back(item);
  io::save_safetensors(dir.file("lacking.safetensors"), lacking);
  CHECK(contains(error_of([&] { models::load_lumina2_weights(model, dir.file("lacking.safetensors")); }),
                 "lacks layers.2.ffn_norm1.weight"));
}
