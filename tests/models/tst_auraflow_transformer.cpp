// AuraFlowTransformer2DModel: diffusers' names, the fixtures' forward, the REPA tap over joint then single blocks
// (image tokens only, its errors and where its gradient goes), the centred position window, weight files with
// their mismatches named, and config errors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/auraflow_official_names.h"
#include "core/models/auraflow_transformer.h"
#include "core/models/dit_weights.h"
#include "core/nn/state_loading.h"
#include "tests/fixture_params.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

nlohmann::json tiny_config() {
  return nlohmann::json::parse(R"({"attention_head_dim": 8, "caption_projection_dim": 16, "in_channels": 4,
    "joint_attention_dim": 12, "num_attention_heads": 2, "num_mmdit_layers": 2, "num_single_dit_layers": 2,
    "out_channels": 4, "patch_size": 2, "pos_embed_max_size": 64, "sample_size": 8})");
}

models::AuraFlowInputs tiny_inputs() {
  models::AuraFlowInputs in;
  in.hidden_states = torch::randn({2, 4, 8, 6});  // a 4x3 token grid
  in.encoder_hidden_states = torch::randn({2, 5, 12});
  in.timestep = torch::tensor({0.1, 0.9});
  return in;
}

}  // namespace

TEST_CASE("parameter names are diffusers' keys; the fixtures' forward and taps are reproduced") {
  for (const std::string name : {"auraflow_transformer_forward_1_0", "auraflow_transformer_forward_1_1"}) {
    CAPTURE(name);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + name + ".safetensors"));
    models::AuraFlowTransformer model(
        models::AuraFlowTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config"))));
    auto params = test::fixture_params(file);
    std::set<std::string> want, got;
    for (const auto& item : params) want.insert(item.first);
    for (const auto& item : nn::module_state(*model)) got.insert(item.first);
    CHECK(got == want);

    models::dit::load_weights(*model, params, name);
    model->eval();
    models::AuraFlowInputs in;
    in.hidden_states = file.tensor("in.hidden_states");
    in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
    in.timestep = file.tensor("in.timestep");
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, std::stoll(*file.meta("crepa_block_index")));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
  }
}

TEST_CASE("taps count joint blocks first; single-block taps are the image tokens; past the last block is named") {
  torch::manual_seed(1);
  models::AuraFlowTransformer model(models::AuraFlowTransformerConfig::from_diffusers(tiny_config()));
  const auto in = tiny_inputs();
  const auto message = error_of([&] { model->forward(in, 4); });
  CHECK(contains(message, "crepa_block_index 4"));
  CHECK(contains(message, "2 double-stream and 2 single-stream blocks"));
  torch::NoGradGuard no_grad;
  for (int64_t tap = 0; tap < 4; ++tap) {
    CAPTURE(tap);
    CHECK(model->forward(in, tap).tapped.sizes() == torch::IntArrayRef({2, 12, 16}));  // (B, h·w, D)
  }
  // The last single block's tap is the image part of the sequence the output layer reads: the output follows from it.
  const auto last = model->forward(in, 3);
  const auto temb = model->time_step_proj(models::dit::timestep_features(in.timestep, 256, true, 0, 1000.0));
  const auto ss = model->norm_out_linear(torch::silu(temb)).chunk(2, 1);
  const auto tokens = model->proj_out(last.tapped * (1 + ss[0].unsqueeze(1)) + ss[1].unsqueeze(1));
  const auto rebuilt = tokens.reshape({2, 4, 3, 2, 2, 4}).permute({0, 5, 1, 3, 2, 4}).reshape({2, 4, 8, 6});
  CHECK(torch::allclose(rebuilt, last.prediction, 1e-5, 1e-6));
}

TEST_CASE("the tap's gradient reaches the blocks up to the tap and nothing after it; checkpointing agrees") {
  torch::manual_seed(2);
  models::AuraFlowTransformer model(models::AuraFlowTransformerConfig::from_diffusers(tiny_config()));
  model->train();
  const auto in = tiny_inputs();
  model->forward(in, 2).tapped.pow(2).mean().backward();  // the first single block
  const auto grad_norm = [](const torch::Tensor& p) {
    return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
  };
  CHECK(grad_norm(model->pos_embed->pos_embed) > 0);
  CHECK(grad_norm(model->register_tokens) > 0);
  CHECK(grad_norm(model->context_embedder->weight) > 0);
  CHECK(grad_norm(model->joint_blocks[1]->ff_context->out_projection->weight) > 0);
  CHECK(grad_norm(model->single_blocks[0]->ff->out_projection->weight) > 0);
  CHECK(grad_norm(model->single_blocks[1]->attn->to_q->weight) == 0);
  CHECK(grad_norm(model->proj_out->weight) == 0);
  CHECK(grad_norm(model->norm_out_linear->weight) == 0);

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

TEST_CASE("the position window is centred on the square table; a grid that does not fit is named") {
  models::AuraFlowPatchEmbed embed(2, 4, 16, 64);  // an 8x8 table
  const auto rows = embed->position_indices(4, 3);
  // Rows 2..5, columns 3..5 of the 8x8 grid.
  CHECK(rows.index({0}).item<int64_t>() == 2 * 8 + 3);
  CHECK(rows.index({2}).item<int64_t>() == 2 * 8 + 5);
  CHECK(rows.index({11}).item<int64_t>() == 5 * 8 + 5);
  CHECK(contains(error_of([&] { embed->position_indices(10, 2); }), "does not fit the 8x8 position table"));
}

TEST_CASE("a weight file with a mis-shaped tensor is named; config errors are named") {
  torch::manual_seed(3);
  test::ScratchDir dir;
  models::AuraFlowTransformer source(models::AuraFlowTransformerConfig::from_diffusers(tiny_config()));
  io::NamedTensors tensors;
  for (const auto& [name, tensor] : nn::module_state(*source))
    tensors.emplace_back(name, name == "register_tokens" ? torch::zeros({1, 4, 16}) : tensor);
  io::save_safetensors(dir.file("broken.safetensors"), tensors);
  models::AuraFlowTransformer loaded(models::AuraFlowTransformerConfig::from_diffusers(tiny_config()));
  const auto message = error_of([&] { models::dit::load_weights(*loaded, dir.file("broken.safetensors")); });
  CHECK(contains(message, "broken.safetensors"));
  CHECK(contains(message, "register_tokens: checkpoint [1, 4, 16], model [1, 8, 16]"));

  auto c = tiny_config();
  c["caption_projection_dim"] = 24;
  CHECK(contains(error_of([&] { models::AuraFlowTransformerConfig::from_diffusers(c); }), "'caption_projection_dim'"));
  c = tiny_config();
  c["num_mmdit_layers"] = -1;
  CHECK(contains(error_of([&] { models::AuraFlowTransformerConfig::from_diffusers(c); }), "'num_mmdit_layers'"));
  c = tiny_config();
  c["out_channels"] = nullptr;
  CHECK(models::AuraFlowTransformerConfig::from_diffusers(c).out_channels == 4);
}

TEST_CASE("a bf16 model follows the fp32 one") {
  torch::manual_seed(7);
  models::AuraFlowTransformer model(models::AuraFlowTransformerConfig::from_diffusers(tiny_config()));
  model->eval();
  const auto in = tiny_inputs();
  torch::NoGradGuard no_grad;
  const auto want = model->forward(in, 3);
  model->to(torch::kBFloat16);
  auto half = in;
  half.hidden_states = in.hidden_states.to(torch::kBFloat16);
  half.encoder_hidden_states = in.encoder_hidden_states.to(torch::kBFloat16);
  const auto got = model->forward(half, 3);
  CHECK(bool(got.prediction.scalar_type() == torch::kBFloat16));
  CHECK(torch::allclose(got.prediction.to(torch::kFloat32), want.prediction, 0.05, 0.05));
  CHECK(torch::allclose(got.tapped.to(torch::kFloat32), want.tapped, 0.05, 0.05));
}

TEST_CASE("a single file under the original AuraFlow names reproduces the fixture") {
  test::ScratchDir dir;
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/auraflow_transformer_forward_1_1.safetensors"));
  const auto config = models::AuraFlowTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config")));
  const auto p = [&](const std::string& key) { return file.tensor("param." + key); };
  // The original layout, written out by hand under ComfyUI's prefix; modF holds [shift; scale].
  io::NamedTensors original;
  const auto put = [&](const std::string& key, const torch::Tensor& v) {
    original.emplace_back("model.diffusion_model." + key, v.contiguous());
  };
  put("register_tokens", p("register_tokens"));
  put("t_embedder.mlp.0.weight", p("time_step_proj.linear_1.weight"));
  put("t_embedder.mlp.0.bias", p("time_step_proj.linear_1.bias"));
  put("t_embedder.mlp.2.weight", p("time_step_proj.linear_2.weight"));
  put("t_embedder.mlp.2.bias", p("time_step_proj.linear_2.bias"));
  put("cond_seq_linear.weight", p("context_embedder.weight"));
  put("final_linear.weight", p("proj_out.weight"));
  put("positional_encoding", p("pos_embed.pos_embed"));
  put("init_x_linear.weight", p("pos_embed.proj.weight"));
  put("init_x_linear.bias", p("pos_embed.proj.bias"));
  const auto final_mod = p("norm_out.linear.weight").chunk(2, 0);
  put("modF.1.weight", torch::cat({final_mod[1], final_mod[0]}));
  for (int i = 0; i < config.num_mmdit_layers; ++i) {
    const std::string o = "double_layers." + std::to_string(i) + ".",
                      d = "joint_transformer_blocks." + std::to_string(i) + ".";
    for (const auto& [from, to] : std::map<std::string, std::string>{{"mlpX.c_fc1", "ff.linear_1"},
                                                                     {"mlpX.c_fc2", "ff.linear_2"},
                                                                     {"mlpX.c_proj", "ff.out_projection"},
                                                                     {"mlpC.c_fc1", "ff_context.linear_1"},
                                                                     {"mlpC.c_fc2", "ff_context.linear_2"},
                                                                     {"mlpC.c_proj", "ff_context.out_projection"},
                                                                     {"modX.1", "norm1.linear"},
                                                                     {"modC.1", "norm1_context.linear"},
                                                                     {"attn.w2q", "attn.to_q"},
                                                                     {"attn.w2k", "attn.to_k"},
                                                                     {"attn.w2v", "attn.to_v"},
                                                                     {"attn.w2o", "attn.to_out.0"},
                                                                     {"attn.w1q", "attn.add_q_proj"},
                                                                     {"attn.w1k", "attn.add_k_proj"},
                                                                     {"attn.w1v", "attn.add_v_proj"},
                                                                     {"attn.w1o", "attn.to_add_out"}})
      put(o + from + ".weight", p(d + to + ".weight"));
  }
  for (int i = 0; i < config.num_single_dit_layers; ++i) {
    const std::string o = "single_layers." + std::to_string(i) + ".",
                      d = "single_transformer_blocks." + std::to_string(i) + ".";
    for (const auto& [from, to] : std::map<std::string, std::string>{{"mlp.c_fc1", "ff.linear_1"},
                                                                     {"mlp.c_fc2", "ff.linear_2"},
                                                                     {"mlp.c_proj", "ff.out_projection"},
                                                                     {"modCX.1", "norm1.linear"},
                                                                     {"attn.w1q", "attn.to_q"},
                                                                     {"attn.w1k", "attn.to_k"},
                                                                     {"attn.w1v", "attn.to_v"},
                                                                     {"attn.w1o", "attn.to_out.0"}})
      put(o + from + ".weight", p(d + to + ".weight"));
  }
  io::save_safetensors(dir.file("original.safetensors"), original);

  models::AuraFlowTransformer model(config);
  models::load_auraflow_weights(model, dir.file("original.safetensors"));
  model->eval();
  models::AuraFlowInputs in;
  in.hidden_states = file.tensor("in.hidden_states");
  in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
  in.timestep = file.tensor("in.timestep");
  {
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, std::stoll(*file.meta("crepa_block_index")));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
  }
  original.emplace_back("model.diffusion_model.single_layers.0.attn.q_norm.weight", torch::ones({16}));
  io::save_safetensors(dir.file("extra.safetensors"), original);
  const auto message = error_of([&] { models::load_auraflow_weights(model, dir.file("extra.safetensors")); });
  CHECK(contains(message, "original AuraFlow names"));
  CHECK(contains(message, "single_layers.0.attn.q_norm.weight"));
}
