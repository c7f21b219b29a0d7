// PixArtTransformer2DModel: diffusers' names, the fixture's forward, the REPA tap (its errors and where its gradient
// goes), non-square sin-cos positions, weight files with their mismatches named, and config errors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/dit_weights.h"
#include "core/models/pixart_official_names.h"
#include "core/models/pixart_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

nlohmann::json tiny_config() {
  return nlohmann::json::parse(R"({"activation_fn": "gelu-approximate", "attention_bias": true,
    "attention_head_dim": 8, "caption_channels": 12, "cross_attention_dim": 16, "in_channels": 4,
    "norm_elementwise_affine": false, "norm_eps": 1e-06, "norm_type": "ada_norm_single", "num_attention_heads": 2,
    "num_embeds_ada_norm": 1000, "num_layers": 3, "out_channels": 8, "patch_size": 2, "sample_size": 8,
    "use_additional_conditions": false})");
}

models::PixArtInputs tiny_inputs(int64_t batch = 2) {
  models::PixArtInputs in;
  in.hidden_states = torch::randn({batch, 4, 8, 6});  // a 4x3 token grid
  in.encoder_hidden_states = torch::randn({batch, 5, 12});
  in.timestep = torch::tensor({10.0, 900.0}).narrow(0, 0, batch);
  in.encoder_attention_mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}, torch::kLong).narrow(0, 0, batch);
  return in;
}

std::map<std::string, torch::Tensor> fixture_params(const io::SafetensorsFile& file) {
  std::map<std::string, torch::Tensor> params;
  for (const auto& name : file.names())
    if (name.rfind("param.", 0) == 0) params[name.substr(6)] = file.tensor(name);
  return params;
}

}  // namespace

TEST_CASE("parameter names are diffusers' keys; the fixture's forward and tap are reproduced") {
  for (const std::string name : {"pixart_transformer_forward_1_0", "pixart_transformer_forward_1_1"}) {
    CAPTURE(name);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + name + ".safetensors"));
    const auto config = nlohmann::json::parse(*file.meta("config"));
    models::PixArtTransformer model(models::PixArtTransformerConfig::from_diffusers(config));
    const auto params = fixture_params(file);
    std::set<std::string> want, got;
    for (const auto& item : params) want.insert(item.first);
    for (const auto& item : nn::module_state(*model)) got.insert(item.first);
    CHECK(got == want);

    models::dit::load_weights(*model, params, name);
    model->eval();
    models::PixArtInputs in;
    in.hidden_states = file.tensor("in.hidden_states");
    in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
    in.timestep = file.tensor("in.timestep");
    in.encoder_attention_mask = file.tensor("in.encoder_attention_mask");
    if (file.contains("in.resolution")) {
      in.resolution = file.tensor("in.resolution");
      in.aspect_ratio = file.tensor("in.aspect_ratio");
    }
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, std::stoll(*file.meta("crepa_block_index")));
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
    // The masked caption tokens matter: dropping the mask changes the prediction.
    in.encoder_attention_mask = torch::Tensor();
    CHECK_FALSE(torch::allclose(model->forward(in, -1).prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  }
}

TEST_CASE("a tap past the last block names how many double- and single-stream blocks there are") {
  torch::manual_seed(1);
  models::PixArtTransformer model(models::PixArtTransformerConfig::from_diffusers(tiny_config()));
  const auto in = tiny_inputs();
  const auto message = error_of([&] { model->forward(in, 3); });
  CHECK(contains(message, "crepa_block_index 3"));
  CHECK(contains(message, "0 double-stream and 3 single-stream blocks"));
  CHECK(contains(error_of([&] { model->forward(in, -2); }), "crepa_block_index -2"));
  torch::NoGradGuard no_grad;
  CHECK_FALSE(model->forward(in, -1).tapped.defined());
  const auto out = model->forward(in, 2);
  CHECK(out.tapped.sizes() == torch::IntArrayRef({2, 12, 16}));  // (B, h·w, D) for the 4x3 grid
  CHECK(out.prediction.sizes() == torch::IntArrayRef({2, 8, 8, 6}));
}

TEST_CASE("the tap's gradient reaches the blocks up to the tap and nothing after it") {
  torch::manual_seed(2);
  models::PixArtTransformer model(models::PixArtTransformerConfig::from_diffusers(tiny_config()));
  model->train();
  const auto in = tiny_inputs();
  const auto out = model->forward(in, 1);
  out.tapped.pow(2).mean().backward();
  const auto grad_norm = [](const torch::Tensor& p) {
    return p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
  };
  CHECK(grad_norm(model->pos_embed->proj->weight) > 0);
  CHECK(grad_norm(model->adaln_single->linear->weight) > 0);
  CHECK(grad_norm(model->caption_projection->linear_1->weight) > 0);
  CHECK(grad_norm(model->blocks[0]->attn1->to_q->weight) > 0);
  CHECK(grad_norm(model->blocks[1]->ff->out->weight) > 0);
  CHECK(grad_norm(model->blocks[1]->scale_shift_table) > 0);
  CHECK(grad_norm(model->blocks[2]->attn1->to_q->weight) == 0);
  CHECK(grad_norm(model->proj_out->weight) == 0);
  CHECK(grad_norm(model->scale_shift_table) == 0);

  // Gradient checkpointing recomputes the blocks in backward and gives the same gradients.
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

TEST_CASE("sin-cos positions: fp32 coordinates scaled by base size and interpolation scale, column half first") {
  // A 2x3 grid, base size 2, interpolation scale 1: token (row 1, column 2) sits at column 2 / (3/2), row 1 / (2/2).
  const auto table = models::dit::sincos_2d_position_table(8, 2, 3, 2.0, 1.0);
  REQUIRE(table.sizes() == torch::IntArrayRef({6, 8}));
  const double c = 2.0f / 1.5f, r = 1.0;
  const std::vector<double> want = {std::sin(c), std::sin(c * 0.01), std::cos(c), std::cos(c * 0.01),
                                    std::sin(r), std::sin(r * 0.01), std::cos(r), std::cos(r * 0.01)};
  for (int64_t k = 0; k < 8; ++k) CHECK(table[5][k].item<double>() == doctest::Approx(want[k]).epsilon(1e-6));
  // Interpolation scale 2 halves every coordinate.
  const auto halved = models::dit::sincos_2d_position_table(8, 2, 3, 2.0, 2.0);
  CHECK(halved[5][0].item<double>() == doctest::Approx(std::sin(c / 2)).epsilon(1e-6));
  CHECK(halved[5][4].item<double>() == doctest::Approx(std::sin(r / 2)).epsilon(1e-6));
}

TEST_CASE("weights from a file or a diffusers folder; a mis-shaped tensor is named") {
  torch::manual_seed(3);
  test::ScratchDir dir;
  models::PixArtTransformer source(models::PixArtTransformerConfig::from_diffusers(tiny_config()));
  io::NamedTensors tensors;
  for (const auto& [name, tensor] : nn::module_state(*source)) tensors.emplace_back(name, tensor);
  std::filesystem::create_directories(dir.path() / "transformer");
  io::save_safetensors(dir.file("transformer/diffusion_pytorch_model.safetensors"), tensors);

  models::PixArtTransformer loaded(models::PixArtTransformerConfig::from_diffusers(tiny_config()));
  models::dit::load_weights(*loaded, dir.file("transformer"));
  source->eval(), loaded->eval();
  torch::NoGradGuard no_grad;
  const auto in = tiny_inputs();
  CHECK(torch::equal(source->forward(in).prediction, loaded->forward(in).prediction));

  io::NamedTensors broken;
  for (const auto& [name, tensor] : tensors)
    broken.emplace_back(name, name == "transformer_blocks.1.attn2.to_k.weight" ? torch::zeros({16, 12}) : tensor);
  broken.emplace_back("transformer_blocks.1.attn2.norm_k.weight", torch::ones({8}));
  io::save_safetensors(dir.file("broken.safetensors"), broken);
  const auto message = error_of([&] { models::dit::load_weights(*loaded, dir.file("broken.safetensors")); });
  CHECK(contains(message, "broken.safetensors"));
  CHECK(contains(message, "transformer_blocks.1.attn2.to_k.weight: checkpoint [16, 12], model [16, 16]"));
  CHECK(contains(message, "unexpected (1)"));
  CHECK(contains(message, "transformer_blocks.1.attn2.norm_k.weight"));
}

TEST_CASE("config values the class cannot build, and missing inputs, are named") {
  const auto with = [](const std::string& key, const nlohmann::json& value) {
    auto c = tiny_config();
    c[key] = value;
    return error_of([&] { models::PixArtTransformerConfig::from_diffusers(c); });
  };
  CHECK(contains(with("norm_type", "ada_norm_zero"), "'norm_type'"));
  CHECK(contains(with("num_embeds_ada_norm", nullptr), "'num_embeds_ada_norm'"));
  CHECK(contains(with("attention_type", "gated"), "'attention_type'"));
  CHECK(contains(with("activation_fn", "relu"), "'activation_fn'"));
  CHECK(contains(with("cross_attention_dim", 24), "'cross_attention_dim'"));
  CHECK(contains(with("num_layers", "3"), "'num_layers'"));
  // diffusers' defaults: out_channels null is in_channels; sample_size 128 turns the size conditions on and sets
  // the interpolation scale to 2; keys of other classes are ignored.
  auto c = tiny_config();
  c["out_channels"] = nullptr;
  c["use_linear_projection"] = false;
  c.erase("use_additional_conditions");
  CHECK(models::PixArtTransformerConfig::from_diffusers(c).out_channels == 4);
  CHECK_FALSE(models::PixArtTransformerConfig::from_diffusers(c).use_additional_conditions);
  c["sample_size"] = 128;
  c["attention_head_dim"] = 12;  // width 24: divisible by 3 for the size embeddings
  c["cross_attention_dim"] = 24;
  const auto big = models::PixArtTransformerConfig::from_diffusers(c);
  CHECK(big.use_additional_conditions);
  CHECK(big.interpolation_scale == 2.0);

  models::PixArtTransformer model(big);
  auto in = tiny_inputs();
  in.hidden_states = torch::randn({2, 4, 8, 8});
  CHECK(contains(error_of([&] { model->forward(in); }), "resolution (B, 2) and aspect_ratio (B, 1) are required"));
  in.resolution = torch::tensor({{64.0, 64.0}, {64.0, 48.0}});
  in.aspect_ratio = torch::tensor({{1.0}, {0.75}});
  torch::NoGradGuard no_grad;
  const auto out = model->forward(in);
  CHECK(out.prediction.sizes() == torch::IntArrayRef({2, 4, 8, 8}));
  auto odd = in;
  odd.hidden_states = torch::randn({2, 4, 7, 8});
  CHECK(contains(error_of([&] { model->forward(odd); }), "not divisible by patch_size 2"));
}

TEST_CASE("without cross-attention the blocks have no attn2 and the captions are not needed") {
  auto c = tiny_config();
  c["cross_attention_dim"] = nullptr;
  c["caption_channels"] = nullptr;
  c["norm_elementwise_affine"] = true;
  models::PixArtTransformer model(models::PixArtTransformerConfig::from_diffusers(c));
  const auto state = nn::module_state(*model);
  CHECK_FALSE(state.count("transformer_blocks.0.attn2.to_q.weight"));
  CHECK_FALSE(state.count("caption_projection.linear_1.weight"));
  CHECK(state.count("transformer_blocks.0.norm1.weight"));
  CHECK(state.count("transformer_blocks.0.norm2.bias"));  // adaLN-single keeps norm2 for the feed-forward
  auto in = tiny_inputs();
  in.encoder_hidden_states = torch::Tensor();
  in.encoder_attention_mask = torch::Tensor();
  in.attention_mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  torch::NoGradGuard no_grad;
  const auto masked = model->forward(in, 0);
  in.attention_mask = torch::Tensor();
  const auto unmasked = model->forward(in, 0);
  // The self-attention mask drops keys of the first image only.
  CHECK_FALSE(torch::allclose(masked.tapped[0], unmasked.tapped[0]));
  CHECK(torch::allclose(masked.tapped[1], unmasked.tapped[1], 1e-5, 1e-6));
}

TEST_CASE("a single file under the official PixArt names reproduces the fixture") {
  test::ScratchDir dir;
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/pixart_transformer_forward_1_1.safetensors"));
  const auto config = models::PixArtTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config")));
  REQUIRE(config.use_additional_conditions);
  auto state = fixture_params(file);
  // The official layout, written out by hand: fused qkv = [q; k; v], kv_linear = [k; v].
  io::NamedTensors official;
  const auto put = [&](const std::string& name, const torch::Tensor& t) {
    official.emplace_back(name, t.contiguous());
  };
  for (const std::string leaf : {"weight", "bias"}) {
    put("x_embedder.proj." + leaf, state["pos_embed.proj." + leaf]);
    put("y_embedder.y_proj.fc1." + leaf, state["caption_projection.linear_1." + leaf]);
    put("y_embedder.y_proj.fc2." + leaf, state["caption_projection.linear_2." + leaf]);
    put("t_embedder.mlp.0." + leaf, state["adaln_single.emb.timestep_embedder.linear_1." + leaf]);
    put("t_embedder.mlp.2." + leaf, state["adaln_single.emb.timestep_embedder.linear_2." + leaf]);
    put("csize_embedder.mlp.0." + leaf, state["adaln_single.emb.resolution_embedder.linear_1." + leaf]);
    put("csize_embedder.mlp.2." + leaf, state["adaln_single.emb.resolution_embedder.linear_2." + leaf]);
    put("ar_embedder.mlp.0." + leaf, state["adaln_single.emb.aspect_ratio_embedder.linear_1." + leaf]);
    put("ar_embedder.mlp.2." + leaf, state["adaln_single.emb.aspect_ratio_embedder.linear_2." + leaf]);
    put("t_block.1." + leaf, state["adaln_single.linear." + leaf]);
    put("final_layer.linear." + leaf, state["proj_out." + leaf]);
    for (int i = 0; i < 3; ++i) {
      const std::string o = "blocks." + std::to_string(i) + ".", d = "transformer_blocks." + std::to_string(i) + ".";
      put(o + "attn.qkv." + leaf, torch::cat({state[d + "attn1.to_q." + leaf], state[d + "attn1.to_k." + leaf],
                                              state[d + "attn1.to_v." + leaf]}));
      put(o + "attn.proj." + leaf, state[d + "attn1.to_out.0." + leaf]);
      put(o + "cross_attn.q_linear." + leaf, state[d + "attn2.to_q." + leaf]);
      put(o + "cross_attn.kv_linear." + leaf,
          torch::cat({state[d + "attn2.to_k." + leaf], state[d + "attn2.to_v." + leaf]}));
      put(o + "cross_attn.proj." + leaf, state[d + "attn2.to_out.0." + leaf]);
      put(o + "mlp.fc1." + leaf, state[d + "ff.net.0.proj." + leaf]);
      put(o + "mlp.fc2." + leaf, state[d + "ff.net.2." + leaf]);
      if (leaf == "weight") put(o + "scale_shift_table", state[d + "scale_shift_table"]);
    }
  }
  put("final_layer.scale_shift_table", state["scale_shift_table"]);
  put("pos_embed", torch::zeros({1, 16, 48}));           // the fixed table: not a diffusers tensor
  put("y_embedder.y_embedding", torch::zeros({6, 24}));  // the null caption: not a diffusers tensor
  io::save_safetensors(dir.file("official.safetensors"), official);

  models::PixArtTransformer model(config);
  models::load_pixart_weights(model, dir.file("official.safetensors"));
  model->eval();
  models::PixArtInputs in;
  in.hidden_states = file.tensor("in.hidden_states");
  in.encoder_hidden_states = file.tensor("in.encoder_hidden_states");
  in.timestep = file.tensor("in.timestep");
  in.encoder_attention_mask = file.tensor("in.encoder_attention_mask");
  in.resolution = file.tensor("in.resolution");
  in.aspect_ratio = file.tensor("in.aspect_ratio");
  {
    torch::NoGradGuard no_grad;
    const auto out = model->forward(in, 1);
    CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
    CHECK(torch::allclose(out.tapped, file.tensor("out.crepa_hidden_states"), 1e-4, 1e-4));
  }

  // A tensor the table does not know (a qk-norm this class does not build) is named as unexpected.
  official.emplace_back("blocks.0.attn.q_norm.weight", torch::ones({16}));
  io::save_safetensors(dir.file("qknorm.safetensors"), official);
  const auto message = error_of([&] { models::load_pixart_weights(model, dir.file("qknorm.safetensors")); });
  CHECK(contains(message, "official PixArt names"));
  CHECK(contains(message, "blocks.0.attn.q_norm.weight"));
}

TEST_CASE("a bf16 model follows the fp32 one") {
  torch::manual_seed(7);
  models::PixArtTransformer model(models::PixArtTransformerConfig::from_diffusers(tiny_config()));
  model->eval();
  const auto in = tiny_inputs();
  torch::NoGradGuard no_grad;
  const auto want = model->forward(in, 1);
  model->to(torch::kBFloat16);
  auto half = in;
  half.hidden_states = in.hidden_states.to(torch::kBFloat16);
  half.encoder_hidden_states = in.encoder_hidden_states.to(torch::kBFloat16);
  const auto got = model->forward(half, 1);
  CHECK(bool(got.prediction.scalar_type() == torch::kBFloat16));
  CHECK(torch::allclose(got.prediction.to(torch::kFloat32), want.prediction, 0.05, 0.05));
  CHECK(torch::allclose(got.tapped.to(torch::kFloat32), want.tapped, 0.05, 0.05));
}
