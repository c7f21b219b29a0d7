// UNet2DConditionModel beyond the conformance fixtures: loading diffusers folders (single file and sharded),
// named weight errors, config errors naming the key, gradient checkpointing, channels-last, odd sizes.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_layers.h"
#include "core/models/diffusers_weights.h"
#include "core/models/unet_2d_condition.h"
#include "tests/test_support.h"

using namespace repa::models;
using repa::io::SafetensorsFile;

namespace {

SafetensorsFile fixture(const std::string& name) {
  return SafetensorsFile::open(repa::test::fixture_path("conformance/" + name));
}

nlohmann::json fixture_config(const SafetensorsFile& f) { return nlohmann::json::parse(*f.meta("config")); }

repa::io::NamedTensors fixture_params(const SafetensorsFile& f) {
  repa::io::NamedTensors out;
  for (const auto& name : f.names()) {
    if (name.rfind("param.", 0) == 0) out.emplace_back(name.substr(6), f.tensor(name));
  }
  return out;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

UNetOutput run(UNet2DConditionModel& model, const SafetensorsFile& f) {
  UNetConditioning cond;
  if (f.contains("in.text_embeds")) cond.text_embeds = f.tensor("in.text_embeds");
  if (f.contains("in.time_ids")) cond.time_ids = f.tensor("in.time_ids");
  return model->forward(f.tensor("in.sample"), f.tensor("in.timestep"), f.tensor("in.encoder_hidden_states"), cond);
}

bool close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-4) {
  return a.sizes() == b.sizes() && torch::allclose(a, b, tol, tol);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const repa::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a diffusers folder loads: single file and sharded index reproduce the reference outputs") {
  torch::NoGradGuard no_grad;
  for (const char* name : {"unet2d_forward_sd15_1_0.safetensors", "unet2d_forward_sdxl_1_1.safetensors"}) {
    CAPTURE(name);
    const auto f = fixture(name);
    const auto params = fixture_params(f);
    repa::test::ScratchDir single("unet-single"), sharded("unet-sharded");
    write_text(single.file("config.json"), fixture_config(f).dump());
    repa::io::save_safetensors(single.file("diffusion_pytorch_model.safetensors"), params);

    // Two shards and an index, as large checkpoints are published.
    write_text(sharded.file("config.json"), fixture_config(f).dump());
    const std::size_t half = params.size() / 2;
    repa::io::NamedTensors first(params.begin(), params.begin() + half), second(params.begin() + half, params.end());
    repa::io::save_safetensors(sharded.file("diffusion_pytorch_model-00001-of-00002.safetensors"), first);
    repa::io::save_safetensors(sharded.file("diffusion_pytorch_model-00002-of-00002.safetensors"), second);
    nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
    for (std::size_t i = 0; i < params.size(); ++i) {
      index["weight_map"][params[i].first] = i < half ? "diffusion_pytorch_model-00001-of-00002.safetensors"
                                                      : "diffusion_pytorch_model-00002-of-00002.safetensors";
    }
    write_text(sharded.file("diffusion_pytorch_model.safetensors.index.json"), index.dump());

    for (const auto* dir : {&single, &sharded}) {
      auto model = load_unet_2d_condition(dir->path().string());
      model->eval();
      const auto out = run(model, f);
      CHECK(close(out.sample, f.tensor("out.sample")));
      CHECK(close(out.mid_block, f.tensor("out.mid_block")));
    }
  }
}

TEST_CASE("weights that do not fit are each named: missing, unexpected, wrong shape") {
  const auto f = fixture("unet2d_forward_sd15_1_0.safetensors");
  diffusers::ParameterInitScope no_init(diffusers::ParameterInit::Uninitialized);
  UNet2DConditionModel model(UNet2DConditionConfig::from_json(fixture_config(f)));
  auto params = fixture_params(f);
  std::vector<std::string> names;
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [name, t] : params) {
    if (name == "conv_out.bias") continue;  // missing
    if (name == "conv_in.weight") t = torch::zeros({32, 4, 1, 1});
    names.push_back(name);
    by_name[name] = t;
  }
  names.push_back("down_blocks.9.extra.weight");
  by_name["down_blocks.9.extra.weight"] = torch::zeros({1});
  const auto message = error_of([&] {
    diffusers::load_named_tensors(*model, names, [&](const std::string& n) { return by_name.at(n); }, "test.safetensors");
  });
  CHECK(message.find("test.safetensors") != std::string::npos);
  CHECK(message.find("missing (1):\n    conv_out.bias") != std::string::npos);
  CHECK(message.find("unexpected (1):\n    down_blocks.9.extra.weight") != std::string::npos);
  CHECK(message.find("conv_in.weight: checkpoint [32, 4, 1, 1], model [32, 4, 3, 3]") != std::string::npos);
}

TEST_CASE("config values the model cannot build are rejected naming the key") {
  const auto base = fixture_config(fixture("unet2d_forward_sd15_1_0.safetensors"));
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    auto c = base;
    c[key] = value;
    return error_of([&] { UNet2DConditionConfig::from_json(c); });
  };
  CHECK(with("time_embedding_type", "fourier").find("'time_embedding_type'") != std::string::npos);
  CHECK(with("mid_block_type", "UNetMidBlock2DSimpleCrossAttn").find("'mid_block_type'") != std::string::npos);
  CHECK(with("addition_embed_type", "text").find("'addition_embed_type'") != std::string::npos);
  CHECK(with("layers_per_block", nlohmann::json::array({1, 2, 3})).find("'layers_per_block'") != std::string::npos);
  CHECK(with("down_block_types", nlohmann::json::array({"CrossAttnDownBlock2D", "SkipDownBlock2D"}))
            .find("'down_block_types[1]'") != std::string::npos);
  CHECK(with("norm_eps", "small").find("'norm_eps'") != std::string::npos);
  CHECK(with("dual_cross_attention", true).find("'dual_cross_attention'") != std::string::npos);
  CHECK(with("use_linear_projection", true).empty());
}

TEST_CASE("gradient checkpointing reruns blocks in backward and gives the same gradients") {
  const auto f = fixture("unet2d_forward_sdxl_1_1.safetensors");
  torch::manual_seed(0);
  UNet2DConditionModel plain(UNet2DConditionConfig::from_json(fixture_config(f)));
  UNet2DConditionModel checkpointed(UNet2DConditionConfig::from_json(fixture_config(f)));
  {
    torch::NoGradGuard no_grad;
    auto src = plain->named_parameters();
    for (auto& p : checkpointed->named_parameters()) p.value().copy_(src[p.key()]);
  }
  UNetMemoryOptions memory;
  memory.gradient_checkpointing = true;
  checkpointed->set_memory_options(memory);

  auto grads = [&](UNet2DConditionModel& model) {
    model->train();
    model->zero_grad();
    auto context = f.tensor("in.encoder_hidden_states").clone().requires_grad_(true);
    UNetConditioning cond{{}, f.tensor("in.text_embeds"), f.tensor("in.time_ids")};
    auto out = model->forward(f.tensor("in.sample"), f.tensor("in.timestep"), context, cond);
    (out.sample.square().mean() + out.mid_block.mean()).backward();
    std::map<std::string, torch::Tensor> g;
    for (auto& p : model->named_parameters()) g[p.key()] = p.value().grad().clone();
    g["<encoder_hidden_states>"] = context.grad().clone();
    return g;
  };
  const auto want = grads(plain);
  const auto got = grads(checkpointed);
  REQUIRE(got.size() == want.size());
  int compared = 0;
  for (const auto& [name, g] : want) {
    CAPTURE(name);
    REQUIRE(got.at(name).defined());
    CHECK(torch::allclose(got.at(name), g, 1e-5, 1e-6));
    ++compared;
  }
  CHECK(compared > 600);
  CHECK(want.at("mid_block.attentions.0.transformer_blocks.1.attn2.to_k.weight").abs().sum().item<double>() > 0);
}

TEST_CASE("channels-last and odd input sizes give the same prediction; mid_block_shape matches forward") {
  torch::NoGradGuard no_grad;
  const auto f = fixture("unet2d_forward_sd15_1_0.safetensors");
  diffusers::ParameterInitScope no_init(diffusers::ParameterInit::Uninitialized);
  UNet2DConditionModel model(UNet2DConditionConfig::from_json(fixture_config(f)));
  for (auto& [name, t] : fixture_params(f)) model->named_parameters()[name].copy_(t);
  model->eval();
  const auto reference = run(model, f);
  CHECK(close(reference.sample, f.tensor("out.sample")));

  UNetMemoryOptions memory;
  memory.channels_last = true;
  model->set_memory_options(memory);
  const auto nhwc = run(model, f);
  CHECK(close(nhwc.sample, reference.sample, 1e-5));
  CHECK(close(nhwc.mid_block, reference.mid_block, 1e-5));
  model->set_memory_options({});

  // 9x7 is not a multiple of the UNet's factor 2: the up path upsamples to the skip sizes.
  const auto odd = model->forward(torch::randn({1, 4, 9, 7}), torch::tensor(10), torch::randn({1, 3, 24}));
  CHECK((odd.sample.sizes() == torch::IntArrayRef{1, 4, 9, 7}));
  CHECK((odd.mid_block.sizes().vec() == model->mid_block_shape(1, 9, 7)));
  CHECK((model->mid_block_shape(2, 8, 8) == reference.mid_block.sizes().vec()));
}

TEST_CASE("Kolors-style text_proj and class-conditioned configs build with diffusers' names and run") {
  torch::NoGradGuard no_grad;
  auto json = fixture_config(fixture("unet2d_forward_sdxl_1_1.safetensors"));
  json["encoder_hid_dim"] = 40;
  json["encoder_hid_dim_type"] = "text_proj";
  UNet2DConditionModel kolors(UNet2DConditionConfig::from_json(json));
  auto named = kolors->named_parameters();
  REQUIRE(named.contains("encoder_hid_proj.weight"));
  CHECK((named["encoder_hid_proj.weight"].sizes() == torch::IntArrayRef{24, 40}));
  UNetConditioning cond{{}, torch::randn({2, 16}), torch::randn({2, 6})};
  auto out = kolors->forward(torch::randn({2, 4, 8, 8}), torch::tensor({1, 2}), torch::randn({2, 3, 40}), cond);
  CHECK((out.mid_block.sizes() == torch::IntArrayRef{2, 64, 2, 2}));
  // text_time needs its inputs, of the width the config declares.
  CHECK_THROWS_AS(kolors->forward(torch::randn({2, 4, 8, 8}), torch::tensor(1), torch::randn({2, 3, 40})),
                  repa::InputError);
  UNetConditioning narrow{{}, torch::randn({2, 8}), torch::randn({2, 6})};
  CHECK(error_of([&] {
          kolors->forward(torch::randn({2, 4, 8, 8}), torch::tensor(1), torch::randn({2, 3, 40}), narrow);
        }).find("projection_class_embeddings_input_dim") != std::string::npos);

  auto sd = fixture_config(fixture("unet2d_forward_sd15_1_0.safetensors"));
  sd["class_embed_type"] = "timestep";
  UNet2DConditionModel upscaler_like(UNet2DConditionConfig::from_json(sd));
  CHECK((upscaler_like->named_parameters()["class_embedding.linear_1.weight"].sizes() ==
         torch::IntArrayRef{128, 32}));
  const auto x = torch::randn({1, 4, 8, 8});
  const auto ctx = torch::randn({1, 3, 24});
  UNetConditioning a, b;
  a.class_labels = torch::tensor({20});
  b.class_labels = torch::tensor({350});
  CHECK(!torch::allclose(upscaler_like->forward(x, torch::tensor(5), ctx, a).sample,
                         upscaler_like->forward(x, torch::tensor(5), ctx, b).sample));
  CHECK_THROWS_AS(upscaler_like->forward(x, torch::tensor(5), ctx), repa::InputError);
}
