// Timestep features, label embedder (null class, dropout), 2-D sin-cos positions and adaLN modulation.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/nn/adaln.h"
#include "core/nn/embeddings.h"
#include "core/nn/pos_embed.h"
#include "tests/test_support.h"

using namespace repa;

TEST_CASE("timestep features are [cos, sin] over frequencies 10000^(-i/half)") {
  const auto e = nn::timestep_frequency_embedding(torch::tensor({0.0, 2.0}), 4);
  REQUIRE((e.sizes() == torch::IntArrayRef{2, 4}));
  // half = 2: frequencies 1 and 10000^(-1/2) = 0.01.
  const double want0[] = {1, 1, 0, 0};
  const double want1[] = {std::cos(2.0), std::cos(0.02), std::sin(2.0), std::sin(0.02)};
  for (int i = 0; i < 4; ++i) {
    CHECK(e[0][i].item<double>() == doctest::Approx(want0[i]).epsilon(1e-6));
    CHECK(e[1][i].item<double>() == doctest::Approx(want1[i]).epsilon(1e-6));
  }
  CHECK(e[1][0].item<double>() == doctest::Approx(-0.4161468365).epsilon(1e-6));
  const auto odd = nn::timestep_frequency_embedding(torch::tensor({3.0}), 5);
  CHECK(odd.size(1) == 5);
  CHECK(odd[0][4].item<double>() == 0.0);
}

TEST_CASE("2-D sin-cos positions: column in the first half, row in the second") {
  const auto p = nn::sincos_2d_position_embedding(4, 2, 2);
  REQUIRE((p.sizes() == torch::IntArrayRef{4, 4}));
  // Token 1 is (row 0, col 1): [sin 1, cos 1, sin 0, cos 0]; token 2 is (row 1, col 0).
  const double token1[] = {0.8414709848, 0.5403023059, 0.0, 1.0};
  const double token2[] = {0.0, 1.0, 0.8414709848, 0.5403023059};
  for (int i = 0; i < 4; ++i) {
    CHECK(p[1][i].item<double>() == doctest::Approx(token1[i]).epsilon(1e-6));
    CHECK(p[2][i].item<double>() == doctest::Approx(token2[i]).epsilon(1e-6));
  }
  CHECK_THROWS_AS(nn::sincos_2d_position_embedding(6, 2, 2), InputError);
}

TEST_CASE("2-D sin-cos positions equal the REPA reference table in the sit_forward fixtures") {
  for (const char* name : {"sit_forward_1_0.safetensors", "sit_forward_1_1.safetensors"}) {
    const auto file = io::SafetensorsFile::open(test::fixture_path(std::string("conformance/") + name));
    const auto want = file.tensor("param.pos_embed");
    const int64_t grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(want.size(1)))));
    const auto got = nn::sincos_2d_position_embedding(want.size(2), grid, grid).unsqueeze(0);
    CHECK(torch::allclose(got, want, 1e-6, 1e-6));
  }
}

TEST_CASE("label embedder: null class row, forced drop, dropout rate, range errors") {
  torch::manual_seed(0);
  nn::LabelEmbedder embedder(10, 8, 0.5);
  CHECK(embedder->embedding_table->weight.size(0) == 11);
  const auto labels = torch::tensor({3, 7}, torch::kLong);
  const auto forced = embedder->forward(labels, false, torch::tensor({0, 1}));
  CHECK(torch::equal(forced[0], embedder->embedding_table->weight[3]));
  CHECK(torch::equal(forced[1], embedder->embedding_table->weight[10]));
  // Eval mode never drops; train mode drops about dropout_prob of the labels.
  CHECK(torch::equal(embedder->forward(labels, false), embedder->embedding_table->weight.index({labels})));
  const auto many = torch::zeros({4000}, torch::kLong);
  const auto dropped = embedder->drop_labels(many, torch::rand({4000}) < 0.5);
  CHECK(torch::equal(dropped.eq(10).logical_or(dropped.eq(0)), torch::ones({4000}, torch::kBool)));
  const auto out = embedder->forward(many, true);
  const double rate =
      out.sub(embedder->embedding_table->weight[10]).abs().sum(1).eq(0).to(torch::kDouble).mean().item<double>();
  CHECK(rate == doctest::Approx(0.5).epsilon(0.08));
  CHECK_THROWS_AS(embedder->forward(torch::tensor({11}, torch::kLong), false), InputError);
  nn::LabelEmbedder no_cfg(10, 8, 0.0);
  CHECK(no_cfg->embedding_table->weight.size(0) == 10);
  CHECK_THROWS_AS(no_cfg->forward(torch::tensor({10}, torch::kLong), false), InputError);
}

TEST_CASE("timestep embedder names its MLP mlp.0 / mlp.2") {
  nn::TimestepEmbedder embedder(16);
  std::vector<std::string> names;
  for (const auto& p : embedder->named_parameters()) names.push_back(p.key());
  CHECK((names == std::vector<std::string>{"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}));
  CHECK((embedder->forward(torch::rand({3})).sizes() == torch::IntArrayRef{3, 16}));
}

TEST_CASE("modulate scales by 1 + scale and shifts, per sample") {
  const auto x = torch::ones({2, 3, 2});
  const auto shift = torch::tensor({{1.0f, 2.0f}, {0.0f, 0.0f}});
  const auto scale = torch::tensor({{0.5f, -1.0f}, {2.0f, 0.0f}});
  const auto y = nn::modulate(x, shift, scale);
  CHECK(y[0][2][0].item<float>() == doctest::Approx(2.5));
  CHECK(y[0][1][1].item<float>() == doctest::Approx(2.0));
  CHECK(y[1][0][0].item<float>() == doctest::Approx(3.0));
  CHECK(y[1][0][1].item<float>() == doctest::Approx(1.0));
  auto head = nn::adaln_modulation(4, 6);
  CHECK(head->named_parameters().contains("1.weight"));
  CHECK((head->forward(torch::zeros({2, 4})).sizes() == torch::IntArrayRef{2, 24}));
}
