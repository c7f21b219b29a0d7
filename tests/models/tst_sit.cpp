// SiT: official checkpoint names, sizes, adaLN-Zero start, block taps, label dropout, checkpoint loading
// and the errors a user can hit.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/sit.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

models::SiTConfig tiny(int64_t patch = 2) {
  models::SiTConfig c;
  c.input_size = 8;
  c.in_channels = 4;
  c.patch_size = patch;
  c.depth = 3;
  c.hidden_size = 32;
  c.num_heads = 2;
  c.num_classes = 10;
  return c;
}

}  // namespace

TEST_CASE("parameter and buffer names are exactly the official REPA checkpoint's") {
  const auto file = io::SafetensorsFile::open(test::fixture_path("conformance/sit_forward_1_0.safetensors"));
  std::set<std::string> want;
  for (const auto& name : file.names())
    if (name.rfind("param.", 0) == 0) want.insert(name.substr(6));
  const auto config = models::SiTConfig::from_repa_kwargs(nlohmann::json::parse(*file.meta("config")));
  models::SiT model(config);
  std::set<std::string> got;
  for (const auto& [name, tensor] : nn::module_state(*model)) {
    got.insert(name);
    if (want.count(name)) CHECK_MESSAGE((tensor.sizes() == file.info("param." + name).shape), name);
  }
  CHECK(got == want);
}

TEST_CASE("size presets S, B, L, XL with patch 2/4/8; custom sizes from the run config") {
  const auto xl = models::SiTConfig::preset("XL", 2);
  CHECK(xl.depth == 28);
  CHECK(xl.hidden_size == 1152);
  CHECK(xl.num_heads == 16);
  CHECK(models::SiTConfig::preset("L", 4).depth == 24);
  CHECK(models::SiTConfig::preset("B", 8).hidden_size == 768);
  CHECK(models::SiTConfig::preset("S", 2).num_heads == 6);
  CHECK(contains(error_of([] { models::SiTConfig::preset("M", 2); }), "unknown size \"M\""));
  CHECK(contains(error_of([] { models::SiTConfig::preset("B", 3); }), "patch 2, 4 or 8, got 3"));
  const nlohmann::json run = {{"crepa_enabled", true},
                              {"crepa_block_index", 5},
                              {"studio",
                               {{"sit_size", "custom"},
                                {"patch_size", 4},
                                {"depth", 6},
                                {"hidden_size", 64},
                                {"num_heads", 4},
                                {"mlp_ratio", 2.0},
                                {"class_dropout_prob", 0.2}}}};
  const auto c = models::SiTConfig::from_json(run, 16, 4, 7);
  CHECK(c.depth == 6);
  CHECK(c.patch_size == 4);
  CHECK(c.mlp_ratio == 2.0);
  CHECK(c.num_classes == 7);
  CHECK(models::tap_block_from_json(run, c) == 5);
  CHECK(contains(error_of([&] {
                   models::tap_block_from_json({{"crepa_enabled", true}, {"crepa_block_index", 6}}, c);
                 }),
                 "crepa_block_index 6 is past the SiT's depth 6"));
  CHECK(models::tap_block_from_json({{"crepa_enabled", false}}, c) == -1);
  CHECK(!c.bf16_autocast);
  CHECK(models::SiTConfig::from_json({{"mixed_precision", "bf16"}}, 8, 4, 10).bf16_autocast);
  CHECK(contains(error_of([] {
                   models::SiTConfig::from_json({{"studio", {{"patch_size", 4}}}}, 30, 4, 10);
                 }),
                 "latent size 30 is not divisible by patch_size 4"));
  // SiT-S/2 on 32×32×4 latents: 12 blocks of 18·384² + 15·384 weights (qkv 3d², proj d², fc1 4d², fc2 4d²,
  // adaLN 6d²), plus embedders and the final layer: about DiT-S/2's 33M.
  const auto s2 = models::SiTConfig::preset("S", 2);
  models::SiT small(s2);
  int64_t count = 0;
  for (const auto& p : small->parameters()) count += p.numel();
  const int64_t d = 384, block = 18 * d * d + 15 * d;
  const int64_t embed = (4 * 4 * d + d) + (256 * d + d + d * d + d) + 1001 * d;
  const int64_t final_layer = (d * 2 * d + 2 * d) + (d * 16 + 16);
  CHECK(count == 12 * block + embed + final_layer);
  CHECK(count == doctest::Approx(33.0e6).epsilon(0.02));
}

TEST_CASE("adaLN-Zero start: every block is the identity and the prediction is zero") {
  torch::manual_seed(5);
  models::SiT model(tiny());
  const auto x = torch::randn({2, 4, 8, 8});
  const auto t = torch::tensor({0.3f, 0.9f});
  const auto y = torch::tensor({1, 10}, torch::kLong);
  const auto out = model->forward(x, t, y, 1);
  CHECK((out.prediction.sizes() == x.sizes()));
  CHECK(out.prediction.abs().max().item<double>() == 0.0);
  const auto tokens = model->x_embedder->forward(x) + model->pos_embed;
  CHECK(torch::allclose(out.hidden, tokens, 1e-6, 1e-6));
  CHECK(!model->forward(x, t, y).hidden.defined());
}

TEST_CASE("the tapped hidden state is the output of that block; unpatchify inverts the patch layout") {
  torch::manual_seed(6);
  models::SiT model(tiny(4));
  for (auto& p : model->parameters()) {
    torch::NoGradGuard g;
    p.normal_(0, 0.05);
  }
  model->eval();
  const auto x = torch::randn({2, 4, 8, 8});
  const auto t = torch::rand({2});
  const auto y = torch::tensor({3, 4}, torch::kLong);
  const auto c = model->t_embedder->forward(t) + model->y_embedder->forward(y, false);
  auto h = model->x_embedder->forward(x) + model->pos_embed;
  std::vector<torch::Tensor> after;
  for (int i = 0; i < 3; ++i) after.push_back(h = model->blocks[i]->as<models::SiTBlockImpl>()->forward(h, c));
  for (int i = 0; i < 3; ++i) CHECK(torch::allclose(model->forward(x, t, y, i).hidden, after[i], 1e-5, 1e-6));
  // bf16 autocast is a CUDA-only scope: on CPU the forward is unchanged and stays fp32.
  auto with_autocast = tiny(4);
  with_autocast.bf16_autocast = true;
  models::SiT same(with_autocast);
  nn::load_state(*same, nn::module_state(*model), "the first model");
  same->eval();
  const auto plain = model->forward(x, t, y).prediction;
  const auto autocast = same->forward(x, t, y).prediction;
  CHECK((autocast.scalar_type() == torch::kFloat32));
  CHECK(torch::equal(plain, autocast));
  // Token (row 0, col 1), patch pixel (0, 2), channel 3 of a 4×4 patch sits at image (3, 0, 2, 6).
  const auto tokens = torch::zeros({1, 4, 4 * 4 * 4});
  tokens[0][1][(0 * 4 + 2) * 4 + 3] = 1.0;
  const auto image = model->unpatchify(tokens);
  CHECK(image[0][3][0][6].item<float>() == 1.0f);
  CHECK(image.sum().item<float>() == 1.0f);
}

TEST_CASE("label dropout in training, forced drop equals the null label, projector outputs") {
  torch::manual_seed(7);
  auto config = tiny();
  config.z_dims = {12, 20};
  config.projector_dim = 16;
  models::SiT model(config);
  for (auto& p : model->parameters()) {
    torch::NoGradGuard g;
    p.normal_(0, 0.05);
  }
  model->eval();
  const auto x = torch::randn({2, 4, 8, 8});
  const auto t = torch::rand({2});
  const auto dropped = model->forward(x, t, torch::tensor({3, 4}), 0, torch::tensor({1, 0})).prediction;
  const auto null = model->forward(x, t, torch::tensor({10, 4}), 0).prediction;
  CHECK(torch::allclose(dropped, null));
  const auto hidden = model->forward(x, t, torch::tensor({3, 4}), 2).hidden;
  const auto zs = model->project(hidden);
  REQUIRE(zs.size() == 2);
  CHECK((zs[1].sizes() == torch::IntArrayRef{2, 16, 20}));
  // Training mode drops each label with probability 0.1: every row is the labelled or the null output.
  const auto x1 = torch::randn({1, 4, 8, 8});
  const auto t1 = torch::full({1}, 0.5f);
  const auto cond = model->forward(x1, t1, torch::tensor({2})).prediction.flatten();
  const auto uncond = model->forward(x1, t1, torch::tensor({10})).prediction.flatten();
  model->train();
  const auto rows = model->forward(x1.expand({400, 4, 8, 8}), t1.expand({400}), torch::full({400}, 2, torch::kLong))
                        .prediction.flatten(1);
  const auto is_null = (rows - uncond).abs().amax(1).lt(1e-6);
  const auto is_cond = (rows - cond).abs().amax(1).lt(1e-6);
  CHECK(is_null.logical_or(is_cond).all().item<bool>());
  const double rate = is_null.to(torch::kDouble).mean().item<double>();
  CHECK(rate > 0.04);
  CHECK(rate < 0.18);
}

TEST_CASE("clear errors: input size, block index, labels") {
  models::SiT model(tiny(4));
  const auto t = torch::rand({1});
  const auto y = torch::tensor({1}, torch::kLong);
  CHECK(contains(error_of([&] {
                   model->forward(torch::zeros({1, 4, 10, 10}), t, y);
                 }),
                 "not divisible by patch_size 4"));
  CHECK(contains(error_of([&] { model->forward(torch::zeros({1, 3, 8, 8}), t, y); }), "expected latents (N, 4, 8, 8)"));
  CHECK(contains(error_of([&] {
                   model->forward(torch::zeros({1, 4, 8, 8}), t, y, 3);
                 }),
                 "block index 3 is past the depth 3"));
  CHECK(contains(error_of([&] {
                   model->forward(torch::zeros({1, 4, 8, 8}), t, torch::tensor({11}));
                 }),
                 "class label 11"));
  auto bad = tiny();
  bad.num_heads = 5;
  CHECK(contains(error_of([&] { models::SiT m(bad); }), "hidden_size 32 is not divisible by num_heads 5"));
}

TEST_CASE("checkpoint loading: round trip, prefixes, every mismatch named") {
  torch::manual_seed(8);
  test::ScratchDir dir;
  auto config = tiny();
  config.z_dims = {12};
  config.projector_dim = 16;
  models::SiT source(config);
  for (auto& p : source->parameters()) {
    torch::NoGradGuard g;
    p.normal_(0, 0.05);
  }
  io::NamedTensors tensors;
  for (const auto& [name, tensor] : nn::module_state(*source)) tensors.emplace_back("ema." + name, tensor);
  const auto path = dir.file("sit.safetensors");
  io::save_safetensors(path, tensors);

  models::SiT loaded(config);
  models::load_sit_checkpoint(loaded, path, "ema.");
  source->eval(), loaded->eval();
  const auto x = torch::randn({1, 4, 8, 8});
  const auto t = torch::rand({1});
  const auto y = torch::tensor({2}, torch::kLong);
  CHECK(torch::equal(source->forward(x, t, y).prediction, loaded->forward(x, t, y).prediction));

  // Without projectors in the model, the checkpoint's projector tensors are skipped.
  models::SiT plain(tiny());
  models::load_sit_checkpoint(plain, path, "ema.");

  // A deeper model misses blocks.3.*; a wider label table has the wrong shape; a stray tensor is unexpected.
  io::NamedTensors broken;
  for (const auto& [name, tensor] : tensors) {
    if (name == "ema.y_embedder.embedding_table.weight")
      broken.emplace_back(name, torch::zeros({12, 32}));
    else
      broken.emplace_back(name, tensor);
  }
  broken.emplace_back("ema.extra.weight", torch::zeros({1}));
  io::save_safetensors(dir.file("broken.safetensors"), broken);
  auto deeper = config;
  deeper.depth = 4;
  models::SiT target(deeper);
  const auto message = error_of([&] { models::load_sit_checkpoint(target, dir.file("broken.safetensors"), "ema."); });
  CHECK(contains(message, "broken.safetensors"));
  CHECK(contains(message, "missing (10): blocks.3."));
  CHECK(contains(message, "unexpected (1): extra.weight"));
  CHECK(contains(message, "y_embedder.embedding_table.weight: checkpoint [12, 32] vs model [11, 32]"));
}
