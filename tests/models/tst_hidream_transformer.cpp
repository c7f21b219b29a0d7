// HiDreamImageTransformer2DModel: diffusers' names, the fixture's forward and tap, the REPA tap over double then single
// blocks (image tokens, also where SimpleTuner stores text; its bounds and where its gradient goes), the
// mixture-of-experts routing against a dense evaluation, non-square latents, weight files with their mismatches named,
// and config / input errors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/dit_weights.h"
#include "core/models/hidream_official_names.h"
#include "core/models/hidream_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/fixture_params.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

nlohmann::json tiny_config() {
  return nlohmann::json::parse(R"({"attention_head_dim": 8, "axes_dims_rope": [2, 2, 4], "caption_channels": [12, 10],
    "in_channels": 4, "llama_layers": [0, 2, 1, 3], "max_resolution": [12, 12], "num_activated_experts": 2,
    "num_attention_heads": 2, "num_layers": 2, "num_routed_experts": 3, "num_single_layers": 2, "out_channels": null,
    "patch_size": 2, "text_emb_dim": 6})");
}

models::HiDreamInputs tiny_inputs(int64_t height = 6, int64_t width = 6) {
  models::HiDreamInputs in;
  in.hidden_states = torch::randn({2, 4, height, width});
  in.timesteps = torch::tensor({150.0, 800.0});
  in.encoder_hidden_states_t5 = torch::randn({2, 5, 12});
  in.encoder_hidden_states_llama3 = torch::randn({4, 2, 3, 10});
  in.pooled_embeds = torch::randn({2, 6});
  return in;
}

double grad_norm(const torch::Tensor& p) {
  return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
}

}  // namespace

TEST_CASE("parameter names are diffusers' keys; the fixture's forward and tap are reproduced") {
  const std::string name = "hidream_transformer_forward_1_0";
  const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + name + ".safetensors"));
  models::HiDreamTransformer model(
      models::HiDreamTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config"))));
  auto params = test::fixture_params(file);
  std::set<std::string> want, got;
  for (const auto& item : params) want.insert(item.first);
  for (const auto& item : nn::module_state(*model)) got.insert(item.first);
  CHECK(got == want);

  models::dit::load_weights(*model, params, name);
  model->eval();
  models::HiDreamInputs in;
  in.hidden_states = file.tensor("in.hidden_states");
  in.timesteps = file.tensor("in.timesteps");
  in.encoder_hidden_states_t5 = file.tensor("in.encoder_hidden_states_t5");
  in.encoder_hidden_states_llama3 = file.tensor("in.encoder_hidden_states_llama3");
  in.pooled_embeds = file.tensor("in.pooled_embeds");
  torch::NoGradGuard no_grad;
  const auto out = model->forward(in, std::stoll(*file.meta("crepa_block_index")));
  CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
}

TEST_CASE("taps count double blocks first; single-block taps are the image tokens and say where SimpleTuner differs") {
  torch::manual_seed(1);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  const auto in = tiny_inputs();
  const auto message = error_of([&] { model->forward(in, 4); });
  CHECK(contains(message, "crepa_block_index 4"));
  CHECK(contains(message, "2 double-stream and 2 single-stream blocks"));
  CHECK(model->simpletuner_tap_difference(1).empty());
  const auto note = model->simpletuner_tap_difference(2);
  CHECK(contains(note, "single-stream block 0"));
  CHECK(contains(note, "SimpleTuner stores the text tokens"));
  torch::NoGradGuard no_grad;
  for (int64_t tap = 0; tap < 4; ++tap) {
    CAPTURE(tap);
    CHECK(model->forward(in, tap).tapped.sizes() == torch::IntArrayRef({2, 9, 16}));  // (B, h·w, D)
  }
  // The last single block's tap is what the final layer reads: the output follows from it.
  const auto last = model->forward(in, 3);
  const auto temb = model->t_embedder(models::dit::timestep_features(in.timesteps, 256, true, 0.0)) +
                    model->p_embedder(in.pooled_embeds);
  const auto ss = model->final_adaLN(torch::silu(temb)).chunk(2, 1);
  const auto tokens = model->final_linear(
      torch::layer_norm(last.tapped, {16}, {}, {}, 1e-6) * (1 + ss[1].unsqueeze(1)) + ss[0].unsqueeze(1));
  const auto rebuilt = tokens.reshape({2, 3, 3, 2, 2, 4}).permute({0, 5, 1, 3, 2, 4}).reshape({2, 4, 6, 6});
  CHECK(torch::allclose(rebuilt, last.prediction, 1e-5, 1e-6));
}

TEST_CASE("mixture of experts: the top-k routed sum plus the shared expert equals a dense evaluation") {
  torch::manual_seed(2);
  models::HiDreamMoEFeedForward moe(16, 64, 4, 2);
  const auto x = torch::randn({2, 7, 16});
  const auto got = moe->forward(x);
  const auto tokens = x.reshape({-1, 16});
  const auto scores = torch::linear(tokens, moe->gate_weight).softmax(-1);  // (N, 4)
  std::vector<torch::Tensor> outs;
  for (auto& expert : moe->experts) outs.push_back(expert->forward(tokens));
  const auto dense = torch::stack(outs, 1);  // (N, 4, 16)
  // Keep the two largest scores per token, unnormalised.
  const auto kth = std::get<0>(scores.topk(2, -1)).select(1, 1).unsqueeze(1);
  const auto weights = scores * scores.ge(kth).to(scores.scalar_type());
  const auto want = (dense * weights.unsqueeze(-1)).sum(1).view({2, 7, 16}) + moe->shared_experts->forward(x);
  CHECK(torch::allclose(got, want, 1e-5, 1e-6));
  CHECK(moe->shared_experts->w1->out_features == 256);  // int(2 · 32 / 3) = 21 rounded up to 256
  CHECK(moe->experts[0]->w1->out_features == 256);
}

TEST_CASE(
    "the tap's gradient reaches the blocks up to the tap (gate included) and nothing after; checkpointing "
    "agrees") {
  torch::manual_seed(3);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  model->train();
  const auto in = tiny_inputs();
  model->forward(in, 2).tapped.pow(2).mean().backward();  // the first single block
  CHECK(grad_norm(model->x_embedder->weight) > 0);
  CHECK(grad_norm(model->p_embedder->linear_1->weight) > 0);
  CHECK(grad_norm(model->caption_projection[4]->weight) > 0);  // T5
  CHECK(grad_norm(model->caption_projection[2]->weight) > 0);  // single block 0's Llama layer
  CHECK(grad_norm(model->double_blocks[1]->ff_t->w2->weight) > 0);
  CHECK(grad_norm(model->double_blocks[0]->ff_i_moe->gate_weight) > 0);
  CHECK(grad_norm(model->single_blocks[0]->ff_i_moe->shared_experts->w2->weight) > 0);
  CHECK(grad_norm(model->single_blocks[1]->attn1->to_q->weight) == 0);
  CHECK(grad_norm(model->caption_projection[3]->weight) > 0);  // the last Llama layer joins every block's text
  CHECK(grad_norm(model->final_linear->weight) == 0);

  std::vector<torch::Tensor> plain;
  for (auto& p : model->parameters()) plain.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  model->zero_grad();
  model->gradient_checkpointing = true;
  model->forward(in, 2).tapped.pow(2).mean().backward();
  const auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto g = params[i].grad().defined() ? params[i].grad() : torch::zeros_like(params[i]);
    CHECK(torch::allclose(g, plain[i], 1e-5, 1e-6));
  }
}

TEST_CASE("non-square latents are padded to max_resolution's tokens; padded keys are zeroed, not dropped") {
  torch::manual_seed(4);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto in = tiny_inputs(6, 4);
  const auto out = model->forward(in, 1);
  CHECK(out.prediction.sizes() == torch::IntArrayRef({2, 4, 6, 4}));
  // The tap keeps the 36 - 6 padding rows, as SimpleTuner stores the double-stream image tokens.
  CHECK(out.tapped.sizes() == torch::IntArrayRef({2, 36, 16}));
  CHECK(torch::isfinite(out.prediction).all().item<bool>());
  // A padded key still scores 0 against every query (diffusers multiplies keys by the mask), so padding to 36 tokens
  // changes the result against the same grid in a model whose max_resolution leaves no padding.
  auto exact = tiny_config();
  exact["max_resolution"] = nlohmann::json::array({6, 4});
  models::HiDreamTransformer unpadded(models::HiDreamTransformerConfig::from_diffusers(exact));
  unpadded->eval();
  for (const auto& item : model->named_parameters()) unpadded->named_parameters()[item.key()].copy_(item.value());
  const auto without = unpadded->forward(in, 1);
  CHECK(!torch::allclose(without.prediction, out.prediction, 1e-4, 1e-4));
  CHECK(contains(error_of([&] { model->forward(tiny_inputs(40, 4)); }), "'max_resolution'"));
}

TEST_CASE("a weight file with missing, unexpected and mis-shaped tensors is named") {
  torch::manual_seed(5);
  test::ScratchDir dir;
  models::HiDreamTransformer source(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  io::NamedTensors tensors;
  for (const auto& [name, tensor] : nn::module_state(*source)) {
    if (name == "single_stream_blocks.1.block.ff_i.experts.2.w3.weight") continue;
    tensors.emplace_back(name,
                         name == "double_stream_blocks.0.block.ff_i.gate.weight" ? torch::zeros({4, 16}) : tensor);
  }
  tensors.emplace_back("single_stream_blocks.0.block.ff_t.w1.weight", torch::zeros({256, 16}));
  io::save_safetensors(dir.file("broken.safetensors"), tensors);
  models::HiDreamTransformer loaded(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  const auto message = error_of([&] { models::dit::load_weights(*loaded, dir.file("broken.safetensors")); });
  CHECK(contains(message, "broken.safetensors"));
  CHECK(contains(message, "double_stream_blocks.0.block.ff_i.gate.weight: checkpoint [4, 16], model [3, 16]"));
  CHECK(contains(message, "missing (1)"));
  CHECK(contains(message, "single_stream_blocks.1.block.ff_i.experts.2.w3.weight"));
  CHECK(contains(message, "unexpected (1)"));
  CHECK(contains(message, "single_stream_blocks.0.block.ff_t.w1.weight"));
}

TEST_CASE("config values the class cannot build, and inputs that do not fit, are named") {
  const auto with = [](const std::string& key, const nlohmann::json& value) {
    auto c = tiny_config();
    c[key] = value;
    return error_of([&] { models::HiDreamTransformerConfig::from_diffusers(c); });
  };
  CHECK(contains(with("llama_layers", nlohmann::json::array({0, 1, 2})), "one per block (4)"));
  CHECK(contains(with("llama_layers", nullptr), "'llama_layers' is required"));
  CHECK(contains(with("axes_dims_rope", nlohmann::json::array({2, 2, 2})), "sums to 6"));
  CHECK(contains(with("num_activated_experts", 4), "'num_activated_experts'"));
  CHECK(contains(with("caption_channels", nlohmann::json::array({12})), "'caption_channels'"));
  CHECK(with("attention_head_dim", 16).empty());  // the axes may cover the first half of each head

  torch::manual_seed(6);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  auto in = tiny_inputs();
  in.encoder_hidden_states_llama3 = torch::randn({3, 2, 3, 10});
  CHECK(contains(error_of([&] { model->forward(in); }), "names layer 3"));
  in = tiny_inputs();
  in.pooled_embeds = torch::randn({2, 5});
  CHECK(contains(error_of([&] { model->forward(in); }), "pooled_embeds must be (B, 6)"));
  in = tiny_inputs();
  in.encoder_hidden_states_t5 = torch::randn({2, 5, 10});
  CHECK(contains(error_of([&] { model->forward(in); }), "encoder_hidden_states_t5 must be (B, T, 12)"));
}

TEST_CASE("a rotary over the first half of each head runs") {
  auto c = tiny_config();
  c["attention_head_dim"] = 16;
  torch::manual_seed(7);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(c));
  torch::NoGradGuard no_grad;
  const auto out = model->forward(tiny_inputs(), 0);
  CHECK(out.tapped.sizes() == torch::IntArrayRef({2, 9, 32}));
  CHECK(torch::isfinite(out.prediction).all().item<bool>());
}

TEST_CASE("in bf16 the forward keeps its dtype and stays close to fp32") {
  torch::manual_seed(8);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = tiny_inputs();
  const auto reference = model->forward(in, 1);
  model->to(torch::kBFloat16);
  for (auto* t : {&in.hidden_states, &in.encoder_hidden_states_t5, &in.encoder_hidden_states_llama3, &in.pooled_embeds})
    *t = t->to(torch::kBFloat16);
  const auto out = model->forward(in, 1);
  CHECK((out.prediction.scalar_type() == torch::kBFloat16));
  CHECK((out.tapped.scalar_type() == torch::kBFloat16));
  const auto relative = [](const torch::Tensor& got, const torch::Tensor& want) {
    return ((got.to(torch::kFloat32) - want).abs().max() / want.abs().max()).item<double>();
  };
  CHECK(relative(out.prediction, reference.prediction) < 0.05);
  CHECK(relative(out.tapped, reference.tapped) < 0.05);
}

TEST_CASE("a single file under ComfyUI's prefix and a diffusers file load the same weights") {
  torch::manual_seed(9);
  test::ScratchDir dir;
  models::HiDreamTransformer source(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  io::NamedTensors prefixed, plain;
  for (const auto& [name, tensor] : nn::module_state(*source)) {
    prefixed.emplace_back("model.diffusion_model." + name, tensor);
    plain.emplace_back(name, tensor);
  }
  io::save_safetensors(dir.file("comfy.safetensors"), prefixed);
  io::save_safetensors(dir.file("diffusers.safetensors"), plain);
  const auto in = tiny_inputs();
  torch::NoGradGuard no_grad;
  const auto want = source->forward(in, 1).prediction;
  for (const std::string file : {"comfy.safetensors", "diffusers.safetensors"}) {
    CAPTURE(file);
    models::HiDreamTransformer loaded(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
    models::load_hidream_weights(loaded, dir.file(file));
    CHECK(torch::equal(loaded->forward(in, 1).prediction, want));
  }
  prefixed.pop_back();
  io::save_safetensors(dir.file("short.safetensors"), prefixed);
  models::HiDreamTransformer loaded(models::HiDreamTransformerConfig::from_diffusers(tiny_config()));
  const auto message = error_of([&] { models::load_hidream_weights(loaded, dir.file("short.safetensors")); });
  CHECK(contains(message, "short.safetensors"));
  CHECK(contains(message, "missing (1)"));
}

TEST_CASE("without routed experts the image feed-forward is one SwiGLU named ff_i.w1/w2/w3") {
  auto c = tiny_config();
  c["num_routed_experts"] = 0;
  torch::manual_seed(10);
  models::HiDreamTransformer model(models::HiDreamTransformerConfig::from_diffusers(c));
  const auto state = nn::module_state(*model);
  CHECK(state.count("double_stream_blocks.0.block.ff_i.w1.weight") == 1);
  CHECK(state.count("single_stream_blocks.1.block.ff_i.w3.weight") == 1);
  CHECK(state.count("double_stream_blocks.0.block.ff_i.gate.weight") == 0);
  torch::NoGradGuard no_grad;
  const auto in = tiny_inputs();
  const auto out = model->forward(in, 0);
  CHECK(model->double_blocks[0]->ff_i->w1->out_features == 256);  // int(2 · 4 · 16 / 3) = 42 rounded up to 256
  CHECK(torch::isfinite(out.prediction).all().item<bool>());
  CHECK(out.tapped.sizes() == torch::IntArrayRef({2, 9, 16}));
}
