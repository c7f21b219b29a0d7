// ChromaTransformer2DModel: diffusers' parameter names (no per-block modulation weights), the text padding mask,
// the REPA tap's range and gradient path, and weight files with wrong tensors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/chroma_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

// 2 double + 2 single blocks; sample 1 has two padded text tokens.
const char* const kFixture = "text2image/chroma_transformer_forward_1_0.safetensors";

struct Loaded {
  io::SafetensorsFile file;
  models::ChromaTransformer model{nullptr};
  torch::Tensor in(const std::string& name) const { return file.tensor("in." + name); }
};

Loaded load_fixture_model() {
  Loaded l{io::SafetensorsFile::open(test::fixture_path(kFixture)), nullptr};
  const auto config = nlohmann::json::parse(l.file.metadata().at("config"));
  l.model = models::ChromaTransformer(models::ChromaTransformerConfig::from_json(config));
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) weights[name.substr(6)] = l.file.tensor(name);
  nn::load_state(*l.model, weights, kFixture);
  return l;
}

models::DiTOutput run(Loaded& l, int64_t tap, const torch::Tensor& context, const torch::Tensor& mask) {
  return l.model->forward(l.in("hidden_states"), context, l.in("timestep"), l.in("img_ids"), l.in("txt_ids"), mask,
                          tap);
}

double grad_sum(const torch::Tensor& p) {
  return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
}

}  // namespace

TEST_CASE("Chroma transformer parameters carry diffusers' names, exactly the checkpoint's") {
  auto l = load_fixture_model();
  std::set<std::string> fixture_names, model_names;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) fixture_names.insert(name.substr(6));
  for (const auto& item : nn::module_state(*l.model)) model_names.insert(item.first);
  CHECK(model_names == fixture_names);
  CHECK(model_names.count("distilled_guidance_layer.norms.1.weight") == 1);
  CHECK(model_names.count("transformer_blocks.0.norm1.linear.weight") == 0);  // modulations come from outside
  CHECK(l.model->mod_proj.size(0) == l.model->config.modulation_slots());
  CHECK(l.model->config.modulation_slots() == 3 * 2 + 12 * 2 + 2);
}

TEST_CASE("Chroma transformer: the padding mask acts per sample, and padded text never reaches the image") {
  auto l = load_fixture_model();
  torch::NoGradGuard no_grad;
  const auto mask = l.in("attention_mask");
  REQUIRE(mask.select(0, 0).all().item<bool>());
  REQUIRE_FALSE(mask.select(0, 1).all().item<bool>());
  const auto context = l.in("encoder_hidden_states");
  const auto masked = run(l, 3, context, mask).prediction;
  const auto unmasked = run(l, 3, context, torch::Tensor()).prediction;
  CHECK(torch::allclose(masked.select(0, 0), unmasked.select(0, 0), 1e-6, 1e-6));  // nothing padded in sample 0
  CHECK_FALSE(torch::allclose(masked.select(0, 1), unmasked.select(0, 1), 1e-4, 1e-4));
  // Replacing the padded text embeddings of sample 1 leaves the image output unchanged.
  const auto text_keep = mask.narrow(1, 0, context.size(1)).to(torch::kFloat).unsqueeze(-1);
  const auto scrambled = context * text_keep + (1 - text_keep) * torch::randn_like(context) * 100;
  const auto again = run(l, 3, scrambled, mask);
  CHECK(torch::allclose(again.prediction, masked, 1e-5, 1e-5));
  CHECK(torch::isfinite(again.tapped).all().item<bool>());
  CHECK(contains(error_of([&] { run(l, -1, context, mask.narrow(1, 0, 20)); }), "attention_mask must be (B, T + N)"));
}

TEST_CASE("Chroma transformer: a tap past the last block names the double and single block counts") {
  auto l = load_fixture_model();
  const auto message = error_of([&] { run(l, 7, l.in("encoder_hidden_states"), l.in("attention_mask")); });
  CHECK(contains(message, "2 double-stream and 2 single-stream blocks"));
}

TEST_CASE("Chroma transformer: the tap's gradient reaches the approximator and the blocks up to the tap only") {
  auto l = load_fixture_model();
  l.model->train();
  const auto out = run(l, 2, l.in("encoder_hidden_states"), l.in("attention_mask"));  // first single block
  REQUIRE(out.tapped.sizes() == torch::IntArrayRef({2, 16, 32}));
  out.tapped.pow(2).sum().backward();
  CHECK(grad_sum(l.model->distilled_guidance_layer->in_proj->weight) > 0);
  CHECK(grad_sum(l.model->transformer_blocks[0]->attn->add_q_proj->weight) > 0);
  CHECK(grad_sum(l.model->single_transformer_blocks[0]->proj_mlp->weight) > 0);
  CHECK(grad_sum(l.model->single_transformer_blocks[1]->proj_mlp->weight) == 0);
  CHECK(grad_sum(l.model->proj_out->weight) == 0);
}

TEST_CASE("Chroma transformer: a weight file with a mis-shaped tensor names it") {
  auto l = load_fixture_model();
  io::NamedTensors tensors;
  for (const auto& item : nn::module_state(*l.model)) {
    const bool bad = item.first == "distilled_guidance_layer.out_proj.weight";
    tensors.emplace_back(item.first, bad ? torch::zeros({32, 31}) : item.second);
  }
  test::ScratchDir dir;
  io::save_safetensors(dir.file("chroma.safetensors"), tensors);
  const auto message = error_of([&] { l.model->load_weights(dir.file("chroma.safetensors")); });
  CHECK(contains(message, "distilled_guidance_layer.out_proj.weight"));
  CHECK(contains(message, "[32, 31]"));
}

TEST_CASE("Chroma transformer config: bad values are named") {
  auto config = nlohmann::json::parse(R"({"num_attention_heads": 2, "attention_head_dim": 16,
      "axes_dims_rope": [4, 6, 6], "approximator_num_channels": 18})");
  CHECK(contains(error_of([&] { models::ChromaTransformerConfig::from_json(config); }),
                 "approximator_num_channels must be a positive multiple of 4"));
  config["approximator_num_channels"] = 16;
  config["approximator_layers"] = -1;
  CHECK(contains(error_of([&] { models::ChromaTransformerConfig::from_json(config); }), "approximator_layers"));
}

TEST_CASE("Chroma transformer: gradient checkpointing keeps the mask and gives the same gradients") {
  auto l = load_fixture_model();
  l.model->train();
  const auto grads = [&](bool checkpointing) {
    l.model->zero_grad();
    l.model->gradient_checkpointing = checkpointing;
    const auto out = run(l, 3, l.in("encoder_hidden_states"), l.in("attention_mask"));
    out.prediction.pow(2).mean().backward();
    return std::vector<torch::Tensor>{out.prediction.detach(),
                                      l.model->transformer_blocks[1]->attn->to_add_out->weight.grad().clone(),
                                      l.model->single_transformer_blocks[0]->proj_out->weight.grad().clone(),
                                      l.model->distilled_guidance_layer->norms[0]->weight.grad().clone()};
  };
  const auto plain = grads(false), checkpointed = grads(true);
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(torch::allclose(plain[i], checkpointed[i], 1e-5, 1e-6));
}
