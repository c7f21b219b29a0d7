// Flux2Transformer2DModel: diffusers' parameter names (bias-free, shared modulations, fused single-block
// projections), the REPA tap over double then single blocks, its gradient path, guidance handling as in diffusers,
// 4-axis rotary ids, and weight files with wrong tensors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/flux2_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

// Guidance embedding on ([dev] shape): 2 double + 2 single blocks.
const char* const kFixture = "text2image/flux2_transformer_forward_1_0.safetensors";

struct Loaded {
  io::SafetensorsFile file;
  models::Flux2Transformer model{nullptr};
  torch::Tensor in(const std::string& name) const { return file.tensor("in." + name); }
};

Loaded load_fixture_model() {
  Loaded l{io::SafetensorsFile::open(test::fixture_path(kFixture)), nullptr};
  const auto config = nlohmann::json::parse(l.file.metadata().at("config"));
  l.model = models::Flux2Transformer(models::Flux2TransformerConfig::from_json(config));
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) weights[name.substr(6)] = l.file.tensor(name);
  nn::load_state(*l.model, weights, kFixture);
  return l;
}

models::DiTOutput run(Loaded& l, int64_t tap, const torch::Tensor& guidance, const torch::Tensor& txt_ids) {
  return l.model->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("timestep"), l.in("img_ids"),
                          txt_ids, guidance, tap);
}

double grad_sum(const torch::Tensor& p) {
  return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
}

}  // namespace

TEST_CASE("Flux2 transformer parameters carry diffusers' names, exactly the checkpoint's") {
  auto l = load_fixture_model();
  std::set<std::string> fixture_names, model_names;
  for (const auto& name : l.file.names())
    if (name.rfind("param.", 0) == 0) fixture_names.insert(name.substr(6));
  for (const auto& item : nn::module_state(*l.model)) model_names.insert(item.first);
  CHECK(model_names == fixture_names);
  CHECK(model_names.count("time_guidance_embed.guidance_embedder.linear_1.weight") == 1);
  CHECK(model_names.count("double_stream_modulation_txt.linear.weight") == 1);
  CHECK(model_names.count("single_transformer_blocks.0.attn.to_qkv_mlp_proj.weight") == 1);
  CHECK(model_names.count("transformer_blocks.0.attn.to_q.bias") == 0);  // every linear is bias-free
}

TEST_CASE("Flux2 transformer: taps, the text prefix cut and the block-count error") {
  auto l = load_fixture_model();
  torch::NoGradGuard no_grad;
  const auto out = run(l, 3, l.in("guidance"), l.in("txt_ids"));
  REQUIRE(out.tapped.sizes() == torch::IntArrayRef({2, 16, 32}));
  // The last single block's image tokens through norm_out and proj_out are the prediction itself.
  const auto& c = l.model->config;
  const auto t = l.model->timestep_embedder(
      models::dit::timestep_features(l.in("timestep") * 1000, c.timestep_guidance_channels, true, 0));
  const auto g = l.model->guidance_embedder(
      models::dit::timestep_features(l.in("guidance") * 1000, c.timestep_guidance_channels, true, 0));
  CHECK(torch::allclose(l.model->proj_out(l.model->norm_out(out.tapped, t + g)), out.prediction, 1e-6, 1e-6));
  const auto message = error_of([&] { run(l, 4, l.in("guidance"), l.in("txt_ids")); });
  CHECK(contains(message, "2 double-stream and 2 single-stream blocks"));
}

TEST_CASE("Flux2 transformer: guidance as diffusers takes it, and the text token axis of the rotary ids") {
  auto l = load_fixture_model();
  torch::NoGradGuard no_grad;
  const auto with_guidance = run(l, -1, l.in("guidance"), l.in("txt_ids")).prediction;
  const auto without = run(l, -1, torch::Tensor(), l.in("txt_ids")).prediction;  // guidance optional
  CHECK_FALSE(torch::allclose(with_guidance, without, 1e-4, 1e-4));
  // The fourth axis (l) numbers the text tokens: moving it moves the output.
  auto txt_ids = l.in("txt_ids").clone();
  txt_ids.select(1, 3).add_(3);
  CHECK_FALSE(torch::allclose(run(l, -1, l.in("guidance"), txt_ids).prediction, with_guidance, 1e-4, 1e-4));
  CHECK(contains(error_of([&] { run(l, -1, l.in("guidance"), l.in("txt_ids").narrow(1, 0, 3)); }),
                 "txt_ids must be (S, 4)"));
  // Without a guidance embedder ([klein]) a guidance value is ignored, as diffusers ignores it.
  auto config = l.model->config;
  config.guidance_embeds = false;
  models::Flux2Transformer klein(config);
  const auto a = klein->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("timestep"), l.in("img_ids"),
                                l.in("txt_ids"), l.in("guidance"));
  const auto b = klein->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("timestep"), l.in("img_ids"),
                                l.in("txt_ids"));
  CHECK(torch::equal(a.prediction, b.prediction));
}

TEST_CASE("Flux2 transformer: the tap's gradient reaches the blocks up to the tap and none after") {
  auto l = load_fixture_model();
  l.model->train();
  const auto out = run(l, 1, l.in("guidance"), l.in("txt_ids"));  // the last double block
  out.tapped.pow(2).sum().backward();
  CHECK(grad_sum(l.model->double_stream_modulation_img->weight) > 0);
  CHECK(grad_sum(l.model->transformer_blocks[0]->ff_context->linear_in->weight) > 0);
  CHECK(grad_sum(l.model->transformer_blocks[1]->ff->linear_out->weight) > 0);
  CHECK(grad_sum(l.model->transformer_blocks[1]->ff_context->linear_in->weight) == 0);  // text after the tap
  CHECK(grad_sum(l.model->single_stream_modulation->weight) == 0);
  CHECK(grad_sum(l.model->single_transformer_blocks[0]->attn->to_qkv_mlp_proj->weight) == 0);
}

TEST_CASE("Flux2 transformer: a weight file with a mis-shaped tensor names it; config errors are named") {
  auto l = load_fixture_model();
  io::NamedTensors tensors;
  for (const auto& item : nn::module_state(*l.model)) {
    const bool bad = item.first == "single_transformer_blocks.1.attn.to_out.weight";
    tensors.emplace_back(item.first, bad ? torch::zeros({32, 7}) : item.second);
  }
  test::ScratchDir dir;
  io::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), tensors);
  const auto message = error_of([&] { l.model->load_weights(dir.path().string()); });
  CHECK(contains(message, "single_transformer_blocks.1.attn.to_out.weight"));
  CHECK(contains(message, "[32, 7]"));
  auto config = nlohmann::json::parse(R"({"num_attention_heads": 2, "attention_head_dim": 16,
      "axes_dims_rope": [4, 4, 4, 2]})");
  CHECK(contains(error_of([&] { models::Flux2TransformerConfig::from_json(config); }), "axes_dims_rope sums to 14"));
  config["axes_dims_rope"] = {4, 4, 4, 4};
  config["mlp_ratio"] = 0;
  CHECK(contains(error_of([&] { models::Flux2TransformerConfig::from_json(config); }), "mlp_ratio"));
}

TEST_CASE("Flux2 transformer: gradient checkpointing gives the same output and gradients") {
  auto l = load_fixture_model();
  l.model->train();
  const auto grads = [&](bool checkpointing) {
    l.model->zero_grad();
    l.model->gradient_checkpointing = checkpointing;
    const auto out = run(l, 2, l.in("guidance"), l.in("txt_ids"));
    (out.prediction.pow(2).mean() + out.tapped.mean()).backward();
    return std::vector<torch::Tensor>{out.prediction.detach(),
                                      l.model->transformer_blocks[0]->attn->add_v_proj->weight.grad().clone(),
                                      l.model->single_transformer_blocks[1]->attn->norm_q->weight.grad().clone(),
                                      l.model->single_stream_modulation->weight.grad().clone()};
  };
  const auto plain = grads(false), checkpointed = grads(true);
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(torch::allclose(plain[i], checkpointed[i], 1e-5, 1e-6));
}

TEST_CASE("Flux2 transformer: a Black Forest Labs single file loads and reproduces the reference output") {
  auto l = load_fixture_model();
  const auto& c = l.model->config;
  std::map<std::string, torch::Tensor> d;
  for (const auto& item : nn::module_state(*l.model)) d[item.first] = item.second;
  io::NamedTensors official;
  const auto put = [&](const std::string& name, const std::string& from) { official.emplace_back(name, d.at(from)); };
  put("img_in.weight", "x_embedder.weight");
  put("txt_in.weight", "context_embedder.weight");
  put("time_in.in_layer.weight", "time_guidance_embed.timestep_embedder.linear_1.weight");
  put("time_in.out_layer.weight", "time_guidance_embed.timestep_embedder.linear_2.weight");
  put("guidance_in.in_layer.weight", "time_guidance_embed.guidance_embedder.linear_1.weight");
  put("guidance_in.out_layer.weight", "time_guidance_embed.guidance_embedder.linear_2.weight");
  for (const std::string m :
       {"double_stream_modulation_img", "double_stream_modulation_txt", "single_stream_modulation"})
    put(m + ".lin.weight", m + ".linear.weight");
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "double_blocks." + std::to_string(i) + ".",
                      t = "transformer_blocks." + std::to_string(i) + ".";
    official.emplace_back(
        b + "img_attn.qkv.weight",
        torch::cat({d.at(t + "attn.to_q.weight"), d.at(t + "attn.to_k.weight"), d.at(t + "attn.to_v.weight")}));
    official.emplace_back(b + "txt_attn.qkv.weight",
                          torch::cat({d.at(t + "attn.add_q_proj.weight"), d.at(t + "attn.add_k_proj.weight"),
                                      d.at(t + "attn.add_v_proj.weight")}));
    put(b + "img_attn.norm.query_norm.scale", t + "attn.norm_q.weight");
    put(b + "img_attn.norm.key_norm.scale", t + "attn.norm_k.weight");
    put(b + "txt_attn.norm.query_norm.scale", t + "attn.norm_added_q.weight");
    put(b + "txt_attn.norm.key_norm.scale", t + "attn.norm_added_k.weight");
    put(b + "img_attn.proj.weight", t + "attn.to_out.0.weight");
    put(b + "txt_attn.proj.weight", t + "attn.to_add_out.weight");
    put(b + "img_mlp.0.weight", t + "ff.linear_in.weight");
    put(b + "img_mlp.2.weight", t + "ff.linear_out.weight");
    put(b + "txt_mlp.0.weight", t + "ff_context.linear_in.weight");
    put(b + "txt_mlp.2.weight", t + "ff_context.linear_out.weight");
  }
  for (int64_t i = 0; i < c.num_single_layers; ++i) {
    const std::string b = "single_blocks." + std::to_string(i) + ".",
                      t = "single_transformer_blocks." + std::to_string(i) + ".";
    put(b + "linear1.weight", t + "attn.to_qkv_mlp_proj.weight");
    put(b + "linear2.weight", t + "attn.to_out.weight");
    put(b + "norm.query_norm.scale", t + "attn.norm_q.weight");
    put(b + "norm.key_norm.scale", t + "attn.norm_k.weight");
  }
  put("final_layer.linear.weight", "proj_out.weight");
  const auto scale_shift = d.at("norm_out.linear.weight").chunk(2, 0);
  official.emplace_back("final_layer.adaLN_modulation.1.weight", torch::cat({scale_shift[1], scale_shift[0]}));
  test::ScratchDir dir;
  io::save_safetensors(dir.file("flux2.safetensors"), official);
  models::Flux2Transformer model(c);
  model->load_weights(dir.file("flux2.safetensors"));
  torch::NoGradGuard no_grad;
  const auto out = model->forward(l.in("hidden_states"), l.in("encoder_hidden_states"), l.in("timestep"),
                                  l.in("img_ids"), l.in("txt_ids"), l.in("guidance"));
  CHECK(torch::allclose(out.prediction, l.file.tensor("out.sample"), 1e-4, 1e-4));
}
