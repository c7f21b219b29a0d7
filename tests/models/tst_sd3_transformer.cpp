// SD3Transformer2DModel: diffusers' parameter names, the REPA tap's range and gradient path, weight files with
// wrong tensors, config errors and the positions of a non-square latent grid.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/sd3_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

// The SD3.5-shaped fixture (dual attention in blocks 0 and 1, RMS qk-norm).
const char* const kFixture = "text2image/sd3_transformer_forward_1_1.safetensors";

struct Loaded {
  io::SafetensorsFile file;
  models::SD3Transformer model{nullptr};
};

Loaded load_fixture_model() {
  Loaded l{io::SafetensorsFile::open(test::fixture_path(kFixture)), nullptr};
  const auto config = nlohmann::json::parse(l.file.metadata().at("config"));
  l.model = models::SD3Transformer(models::SD3TransformerConfig::from_json(config));
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) weights[name.substr(6)] = l.file.tensor(name);
  nn::load_state(*l.model, weights, kFixture);
  return l;
}

models::DiTOutput run(Loaded& l, int64_t tap) {
  return l.model->forward(l.file.tensor("in.hidden_states"), l.file.tensor("in.encoder_hidden_states"),
                          l.file.tensor("in.pooled_projections"), l.file.tensor("in.timestep"), tap);
}

}  // namespace

TEST_CASE("SD3 transformer parameters carry diffusers' names, exactly the checkpoint's") {
  auto l = load_fixture_model();
  std::set<std::string> fixture_names, model_names;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) fixture_names.insert(name.substr(6));
  for (const auto& item : nn::module_state(*l.model)) model_names.insert(item.first);
  CHECK(model_names == fixture_names);
  CHECK(model_names.count("transformer_blocks.0.attn2.norm_q.weight") == 1);
  CHECK(model_names.count("transformer_blocks.2.norm1_context.linear.weight") == 1);   // adaLN-Continuous, last block
  CHECK(model_names.count("transformer_blocks.2.ff_context.net.0.proj.weight") == 0);  // context_pre_only
  CHECK(model_names.count("pos_embed.pos_embed") == 1);
}

TEST_CASE("SD3 transformer: a tap past the last joint block names the block counts") {
  auto l = load_fixture_model();
  const auto message = error_of([&] { run(l, 3); });
  CHECK(contains(message, "crepa_block_index 3"));
  CHECK(contains(message, "3 double-stream and 0 single-stream blocks"));
  CHECK(error_of([&] { run(l, -2); }) != "");
  CHECK_FALSE(run(l, -1).tapped.defined());
}

TEST_CASE("SD3 transformer: the tap's gradient reaches the blocks up to the tap and none after") {
  auto l = load_fixture_model();
  l.model->train();
  const auto out = run(l, 1);
  REQUIRE(out.tapped.sizes() == torch::IntArrayRef({2, 16, 32}));
  out.tapped.pow(2).sum().backward();
  const auto grad_norm = [](const torch::Tensor& p) {
    return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
  };
  CHECK(grad_norm(l.model->pos_embed->proj->weight) > 0);
  CHECK(grad_norm(l.model->time_text_embed->timestep_embedder->linear_1->weight) > 0);
  CHECK(grad_norm(l.model->transformer_blocks[0]->attn->to_q->weight) > 0);
  CHECK(grad_norm(l.model->transformer_blocks[0]->ff_context->proj->weight) > 0);  // text stream feeds block 1
  CHECK(grad_norm(l.model->transformer_blocks[1]->attn2->to_q->weight) > 0);
  CHECK(grad_norm(l.model->transformer_blocks[1]->ff->out->weight) > 0);
  CHECK(grad_norm(l.model->transformer_blocks[1]->ff_context->proj->weight) == 0);  // text after the tap
  CHECK(grad_norm(l.model->transformer_blocks[2]->attn->to_q->weight) == 0);
  CHECK(grad_norm(l.model->proj_out->weight) == 0);
}

TEST_CASE("SD3 transformer: a weight file with a mis-shaped, a missing and an unknown tensor names each") {
  auto l = load_fixture_model();
  io::NamedTensors tensors;
  for (const auto& item : nn::module_state(*l.model)) {
    if (item.first == "context_embedder.bias") continue;
    const auto t = item.first == "transformer_blocks.1.attn.to_k.weight" ? item.second.narrow(0, 0, 16) : item.second;
    tensors.emplace_back(item.first, t);
  }
  tensors.emplace_back("transformer_blocks.9.attn.to_q.weight", torch::zeros({2}));
  test::ScratchDir dir;
  io::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), tensors);
  const auto message = error_of([&] { l.model->load_weights(dir.path().string()); });
  CHECK(contains(message, "transformer_blocks.1.attn.to_k.weight"));
  CHECK(contains(message, "[16, 32]"));
  CHECK(contains(message, "context_embedder.bias"));
  CHECK(contains(message, "transformer_blocks.9.attn.to_q.weight"));
  CHECK(contains(message, "diffusion_pytorch_model.safetensors"));
}

TEST_CASE("SD3 transformer: a weight folder round-trips through load_weights") {
  auto l = load_fixture_model();
  io::NamedTensors tensors;
  for (const auto& item : nn::module_state(*l.model)) tensors.emplace_back(item.first, item.second);
  test::ScratchDir dir;
  io::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), tensors);
  models::SD3Transformer fresh(l.model->config);
  fresh->load_weights(dir.path().string());
  torch::NoGradGuard no_grad;
  const auto want = run(l, 0).prediction;
  const auto got = fresh
                       ->forward(l.file.tensor("in.hidden_states"), l.file.tensor("in.encoder_hidden_states"),
                                 l.file.tensor("in.pooled_projections"), l.file.tensor("in.timestep"))
                       .prediction;
  CHECK(torch::equal(got, want));
}

TEST_CASE("SD3 transformer config: bad values are named") {
  auto config = nlohmann::json::parse(R"({"num_attention_heads": 2, "attention_head_dim": 16,
      "caption_projection_dim": 24, "num_layers": 2})");
  CHECK(contains(error_of([&] { models::SD3TransformerConfig::from_json(config); }), "caption_projection_dim 24"));
  config["caption_projection_dim"] = 32;
  config["qk_norm"] = "rms_norm_across_heads";
  CHECK(contains(error_of([&] { models::SD3TransformerConfig::from_json(config); }), "qk_norm"));
  config["qk_norm"] = "bogus";
  CHECK(contains(error_of([&] { models::SD3TransformerConfig::from_json(config); }), "unknown qk_norm 'bogus'"));
  config["qk_norm"] = nullptr;
  config["num_layers"] = "two";
  CHECK(contains(error_of([&] { models::SD3TransformerConfig::from_json(config); }), "num_layers"));
  config["num_layers"] = 2;
  config["out_channels"] = nullptr;
  config["in_channels"] = 8;
  CHECK(models::SD3TransformerConfig::from_json(config).out_channels == 8);  // null means in_channels
}

TEST_CASE("SD3 transformer: a non-square latent takes the centred crop of the stored position table") {
  auto l = load_fixture_model();
  torch::NoGradGuard no_grad;
  // 8x12 latent, patch 2 → a 4x6 grid; pos_embed_max_size 16 → rows 6..9, columns 5..10 of the 16x16 table.
  const auto latent = torch::randn({1, 4, 8, 12});
  const auto tokens = l.model->pos_embed(latent);
  const auto table = l.model->pos_embed->pos_embed.reshape({16, 16, -1});
  const auto projected = l.model->pos_embed->proj(latent).flatten(2).transpose(1, 2);
  const auto want = projected + table.narrow(0, 6, 4).narrow(1, 5, 6).reshape({1, 24, -1});
  CHECK(torch::allclose(tokens, want, 1e-6, 1e-6));
  const auto out = l.model->forward(latent, l.file.tensor("in.encoder_hidden_states").narrow(0, 0, 1),
                                    l.file.tensor("in.pooled_projections").narrow(0, 0, 1),
                                    l.file.tensor("in.timestep").narrow(0, 0, 1), 2);
  CHECK(out.prediction.sizes() == torch::IntArrayRef({1, 4, 8, 12}));
  CHECK(out.tapped.sizes() == torch::IntArrayRef({1, 24, 32}));
}

TEST_CASE("SD3 transformer: gradient checkpointing gives the same output and gradients") {
  auto l = load_fixture_model();
  l.model->train();
  const auto grads = [&](bool checkpointing) {
    l.model->zero_grad();
    l.model->gradient_checkpointing = checkpointing;
    const auto out = run(l, 1);
    (out.prediction.pow(2).mean() + out.tapped.mean()).backward();
    return std::vector<torch::Tensor>{
        out.prediction.detach(), l.model->transformer_blocks[0]->attn->add_k_proj->weight.grad().clone(),
        l.model->transformer_blocks[1]->attn2->to_v->weight.grad().clone(),
        l.model->transformer_blocks[2]->norm1_context_continuous->linear->weight.grad().clone(),
        l.model->pos_embed->proj->weight.grad().clone()};
  };
  const auto plain = grads(false), checkpointed = grads(true);
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(torch::allclose(plain[i], checkpointed[i], 1e-5, 1e-6));
}

TEST_CASE("SD3 transformer: every qk_norm kind and computed positions build with diffusers' names and run") {
  const auto base = nlohmann::json::parse(R"({"sample_size": 8, "patch_size": 1, "in_channels": 4, "out_channels": 8,
      "num_layers": 2, "attention_head_dim": 8, "num_attention_heads": 2, "joint_attention_dim": 12,
      "caption_projection_dim": 16, "pooled_projection_dim": 10, "pos_embed_max_size": null,
      "dual_attention_layers": [0]})");
  for (const std::string kind : {"layer_norm", "fp32_layer_norm", "rms_norm", ""}) {
    auto json = base;
    if (!kind.empty()) json["qk_norm"] = kind;
    models::SD3Transformer model(models::SD3TransformerConfig::from_json(json));
    std::set<std::string> names;
    for (const auto& item : nn::module_state(*model)) names.insert(item.first);
    CAPTURE(kind);
    // Without pos_embed_max_size the positions are computed, not stored.
    CHECK(names.count("pos_embed.pos_embed") == 0);
    CHECK(names.count("transformer_blocks.0.attn.norm_added_q.weight") == (kind == "layer_norm" || kind == "rms_norm"));
    CHECK(names.count("transformer_blocks.0.attn2.norm_k.bias") == (kind == "layer_norm"));
    CHECK(names.count("transformer_blocks.1.attn2.to_q.weight") == 0);  // only block 0 is dual
    torch::NoGradGuard no_grad;
    const auto out = model->forward(torch::randn({2, 4, 6, 8}), torch::randn({2, 5, 12}), torch::randn({2, 10}),
                                    torch::tensor({10.0f, 900.0f}), 1);
    CHECK(out.prediction.sizes() == torch::IntArrayRef({2, 8, 6, 8}));
    CHECK(out.tapped.sizes() == torch::IntArrayRef({2, 48, 16}));
    CHECK(torch::isfinite(out.prediction).all().item<bool>());
  }
}
