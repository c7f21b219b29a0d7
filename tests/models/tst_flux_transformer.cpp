// FluxTransformer2DModel: diffusers' parameter names, the REPA tap over double then single blocks (text prefix cut),
// its gradient path, guidance on/off errors, rotary ids and weight files with wrong tensors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/flux_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

// Guidance embedding on (Flux dev shape): 2 double + 2 single blocks.
const char* const kFixture = "text2image/flux_transformer_forward_1_0.safetensors";

struct Loaded {
  io::SafetensorsFile file;
  models::FluxTransformer model{nullptr};
  torch::Tensor in(const std::string& name) const { return file.tensor("in." + name); }
};

Loaded load_fixture_model() {
  Loaded l{io::SafetensorsFile::open(test::fixture_path(kFixture)), nullptr};
  const auto config = nlohmann::json::parse(l.file.metadata().at("config"));
  l.model = models::FluxTransformer(models::FluxTransformerConfig::from_json(config));
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) weights[name.substr(6)] = l.file.tensor(name);
  nn::load_state(*l.model, weights, kFixture);
  return l;
}

models::DiTOutput run(Loaded& l, int64_t tap, const torch::Tensor& guidance) {
  return l.model->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("pooled_projections"),
                          l.in("timestep"), l.in("img_ids"), l.in("txt_ids"), guidance, tap);
}

double grad_sum(const torch::Tensor& p) {
  return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
}

}  // namespace

TEST_CASE("Flux transformer parameters carry diffusers' names, exactly the checkpoint's") {
  auto l = load_fixture_model();
  std::set<std::string> fixture_names, model_names;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) fixture_names.insert(name.substr(6));
  for (const auto& item : nn::module_state(*l.model)) model_names.insert(item.first);
  CHECK(model_names == fixture_names);
  CHECK(model_names.count("time_text_embed.guidance_embedder.linear_1.weight") == 1);
  CHECK(model_names.count("single_transformer_blocks.1.attn.norm_k.weight") == 1);
  CHECK(model_names.count("single_transformer_blocks.1.attn.to_out.0.weight") == 0);  // pre_only
}

TEST_CASE("Flux transformer: a tap past the last block names the double and single block counts") {
  auto l = load_fixture_model();
  const auto message = error_of([&] { run(l, 4, l.in("guidance")); });
  CHECK(contains(message, "crepa_block_index 4"));
  CHECK(contains(message, "2 double-stream and 2 single-stream blocks"));
}

TEST_CASE("Flux transformer: a single-block tap is the image part of the joint sequence") {
  auto l = load_fixture_model();
  torch::NoGradGuard no_grad;
  // The last single block's image tokens, through the output norm and projection, are the prediction itself.
  const auto out = run(l, 3, l.in("guidance"));
  REQUIRE(out.tapped.sizes() == torch::IntArrayRef({2, 16, 32}));
  const auto temb =
      l.model->time_text_embed(l.in("timestep") * 1000, l.in("guidance") * 1000, l.in("pooled_projections"));
  CHECK(torch::allclose(l.model->proj_out(l.model->norm_out(out.tapped, temb)), out.prediction, 1e-6, 1e-6));
  // A double-block tap differs from a single-block one, and the tap does not change the prediction.
  const auto early = run(l, 1, l.in("guidance"));
  CHECK_FALSE(torch::allclose(early.tapped, out.tapped, 1e-3, 1e-3));
  CHECK(torch::equal(early.prediction, out.prediction));
}

TEST_CASE("Flux transformer: guidance is required exactly when guidance_embeds is on") {
  auto l = load_fixture_model();
  CHECK(contains(error_of([&] { run(l, -1, torch::Tensor()); }), "guidance (B,) is required"));
  auto config = l.model->config;
  config.guidance_embeds = false;
  models::FluxTransformer schnell(config);
  const auto message = error_of([&] {
    schnell->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("pooled_projections"), l.in("timestep"),
                     l.in("img_ids"), l.in("txt_ids"), l.in("guidance"));
  });
  CHECK(contains(message, "guidance_embeds false"));
}

TEST_CASE("Flux transformer: the tap's gradient reaches the blocks up to the tap and none after") {
  auto l = load_fixture_model();
  l.model->train();
  const auto out = run(l, 2, l.in("guidance"));  // the first single block
  out.tapped.pow(2).sum().backward();
  CHECK(grad_sum(l.model->x_embedder->weight) > 0);
  CHECK(grad_sum(l.model->context_embedder->weight) > 0);
  CHECK(grad_sum(l.model->time_text_embed->guidance_embedder->linear_2->weight) > 0);
  CHECK(grad_sum(l.model->transformer_blocks[1]->ff_context->out->weight) > 0);  // text reaches the single block
  CHECK(grad_sum(l.model->single_transformer_blocks[0]->proj_out->weight) > 0);
  CHECK(grad_sum(l.model->single_transformer_blocks[1]->proj_out->weight) == 0);
  CHECK(grad_sum(l.model->norm_out->linear->weight) == 0);
}

TEST_CASE("Flux transformer: rotary ids move the output, and wrong id shapes are named") {
  auto l = load_fixture_model();
  torch::NoGradGuard no_grad;
  const auto base = run(l, -1, l.in("guidance")).prediction;
  const auto shifted =
      l.model->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("pooled_projections"),
                       l.in("timestep"), l.in("img_ids") + 1.0, l.in("txt_ids"), l.in("guidance"));
  CHECK_FALSE(torch::allclose(base, shifted.prediction, 1e-4, 1e-4));
  // diffusers' deprecated batched ids (1, N, 3) give the same result.
  const auto batched =
      l.model->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("pooled_projections"),
                       l.in("timestep"), l.in("img_ids").unsqueeze(0), l.in("txt_ids").unsqueeze(0), l.in("guidance"));
  CHECK(torch::equal(base, batched.prediction));
  const auto message = error_of([&] {
    l.model->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("pooled_projections"), l.in("timestep"),
                     l.in("img_ids").narrow(0, 0, 8), l.in("txt_ids"), l.in("guidance"));
  });
  CHECK(contains(message, "14 positions for 6 text and 16 image tokens"));
}

TEST_CASE("Flux transformer: a weight file with a mis-shaped tensor names it") {
  auto l = load_fixture_model();
  io::NamedTensors tensors;
  for (const auto& item : nn::module_state(*l.model)) {
    const bool bad = item.first == "single_transformer_blocks.0.proj_mlp.weight";
    tensors.emplace_back(item.first, bad ? torch::zeros({128, 31}) : item.second);
  }
  test::ScratchDir dir;
  io::save_safetensors(dir.file("flux.safetensors"), tensors);
  const auto message = error_of([&] { l.model->load_weights(dir.file("flux.safetensors")); });
  CHECK(contains(message, "single_transformer_blocks.0.proj_mlp.weight"));
  CHECK(contains(message, "[128, 31]"));
  CHECK(contains(message, "flux.safetensors"));
}

TEST_CASE("Flux transformer config: bad values are named") {
  auto config = nlohmann::json::parse(R"({"num_attention_heads": 2, "attention_head_dim": 16,
      "axes_dims_rope": [4, 6, 4]})");
  CHECK(contains(error_of([&] { models::FluxTransformerConfig::from_json(config); }),
                 "axes_dims_rope sums to 14 but the rotary embedding must cover attention_head_dim 16"));
  config["axes_dims_rope"] = {4, 5, 7};
  CHECK(contains(error_of([&] { models::FluxTransformerConfig::from_json(config); }), "positive even number"));
  config["axes_dims_rope"] = {4, 6, 6};
  config["guidance_embeds"] = "yes";
  CHECK(contains(error_of([&] { models::FluxTransformerConfig::from_json(config); }), "guidance_embeds"));
  config["guidance_embeds"] = true;
  config["out_channels"] = nullptr;
  CHECK(models::FluxTransformerConfig::from_json(config).out_channels == 64);  // null means in_channels
}

TEST_CASE("Flux transformer: gradient checkpointing gives the same output and gradients") {
  auto l = load_fixture_model();
  l.model->train();
  const auto grads = [&](bool checkpointing) {
    l.model->zero_grad();
    l.model->gradient_checkpointing = checkpointing;
    const auto out = run(l, 3, l.in("guidance"));
    out.prediction.pow(2).mean().backward();
    return std::vector<torch::Tensor>{out.prediction.detach(),
                                      l.model->transformer_blocks[0]->attn->rms_added_k->weight.grad().clone(),
                                      l.model->single_transformer_blocks[1]->norm->linear->weight.grad().clone(),
                                      l.model->time_text_embed->text_embedder->linear_1->weight.grad().clone()};
  };
  const auto plain = grads(false), checkpointed = grads(true);
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(torch::allclose(plain[i], checkpointed[i], 1e-5, 1e-6));
}
