#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <string>

#include "core/align/projector.h"
#include "core/base/error.h"

using namespace repa::align;

namespace {

std::set<std::string> parameter_names(torch::nn::Module& m) {
  std::set<std::string> names;
  for (const auto& item : m.named_parameters()) names.insert(item.key());
  return names;
}

void set_(torch::Tensor& param, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  param.copy_(value);
}

double silu(double x) {
  return x / (1.0 + std::exp(-x));
}

}  // namespace

TEST_CASE("layernorm_linear: SimpleTuner's LayerNorm(eps 1e-5) then Linear, named norm.* and linear.*") {
  Projector p(ProjectorConfig{ProjectorKind::LayerNormLinear, 2, 3});
  CHECK((parameter_names(*p) == std::set<std::string>{"norm.weight", "norm.bias", "linear.weight", "linear.bias"}));
  set_(p->linear->weight, torch::tensor({{1.f, 0.f}, {0.f, 2.f}, {1.f, 1.f}}));
  set_(p->linear->bias, torch::tensor({0.f, 0.f, 0.5f}));
  // [1, 3]: mean 2, biased variance 1 → [-1, 1] / sqrt(1 + 1e-5).
  const auto out = p->forward(torch::tensor({1.f, 3.f}).reshape({1, 1, 2}));
  const double a = 1.0 / std::sqrt(1.0 + 1e-5);
  CHECK((out.sizes() == torch::IntArrayRef{1, 1, 3}));
  CHECK(out[0][0][0].item<double>() == doctest::Approx(-a));
  CHECK(out[0][0][1].item<double>() == doctest::Approx(2 * a));
  CHECK(out[0][0][2].item<double>() == doctest::Approx(0.5));
}

TEST_CASE("mlp: REPA's Linear-SiLU-Linear-SiLU-Linear, named 0.*, 2.*, 4.*, hidden width 2048 by default") {
  CHECK(ProjectorConfig{}.hidden_dim == 2048);
  Projector p(ProjectorConfig{ProjectorKind::Mlp, 1, 1, 2});
  CHECK(
      (parameter_names(*p) == std::set<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}));
  set_(p->fc0->weight, torch::tensor({{1.f}, {-1.f}}));
  set_(p->fc0->bias, torch::zeros({2}));
  set_(p->fc2->weight, torch::eye(2));
  set_(p->fc2->bias, torch::zeros({2}));
  set_(p->fc4->weight, torch::tensor({{1.f, 1.f}}));
  set_(p->fc4->bias, torch::tensor({0.25f}));
  const auto out = p->forward(torch::full({1, 1, 1}, 2.f));
  const double want = silu(silu(2.0)) + silu(silu(-2.0)) + 0.25;
  CHECK(out.item<double>() == doctest::Approx(want));
  CHECK(Projector(ProjectorConfig{ProjectorKind::Mlp, 8, 4})->fc2->weight.size(0) == 2048);
}

TEST_CASE("conv: iREPA's Conv2d over the row-major token grid, padding k/2, named projection.*") {
  Projector p(ProjectorConfig{ProjectorKind::Conv, 1, 1, 0, 3});
  CHECK((parameter_names(*p) == std::set<std::string>{"projection.weight", "projection.bias"}));
  auto w = torch::zeros({1, 1, 3, 3});
  w[0][0][1][1] = 1.f;   // the token itself
  w[0][0][1][2] = 10.f;  // its right-hand neighbour
  set_(p->projection->weight, w);
  set_(p->projection->bias, torch::zeros({1}));
  // Grid 2x2 of tokens 1 2 / 3 4: out(r, c) = x(r, c) + 10 x(r, c+1), zero beyond the edge.
  const auto out = p->forward(torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({1, 4, 1}), TokenGrid{2, 2});
  const auto v = out.reshape({-1});
  CHECK(v[0].item<float>() == doctest::Approx(21.f));
  CHECK(v[1].item<float>() == doctest::Approx(2.f));
  CHECK(v[2].item<float>() == doctest::Approx(43.f));
  CHECK(v[3].item<float>() == doctest::Approx(4.f));
  // On a 1x4 grid the same tokens are one row: 1 + 20, 2 + 30, 3 + 40, 4.
  const auto row = p->forward(torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({1, 4, 1}), TokenGrid{1, 4}).reshape({-1});
  CHECK(row[1].item<float>() == doctest::Approx(32.f));

  for (int k : {1, 5, 7}) {
    Projector q(ProjectorConfig{ProjectorKind::Conv, 3, 5, 0, k});
    CHECK((q->projection->weight.sizes() == torch::IntArrayRef{5, 3, k, k}));
    CHECK((q->forward(torch::randn({2, 12, 3}), TokenGrid{3, 4}).sizes() == torch::IntArrayRef{2, 12, 5}));
  }
}

TEST_CASE("projectors compute in fp32 whatever the input dtype, and gradients reach input and weights") {
  Projector p(ProjectorConfig{ProjectorKind::LayerNormLinear, 4, 3});
  const auto out = p->forward(torch::randn({2, 5, 4}).to(torch::kBFloat16));
  CHECK((out.scalar_type() == torch::kFloat32));
  auto x = torch::randn({2, 5, 4}, torch::requires_grad());
  p->forward(x).pow(2).sum().backward();
  CHECK(x.grad().abs().sum().item<double>() > 0);
  CHECK(p->linear->weight.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("projector errors name the shapes") {
  Projector p(ProjectorConfig{ProjectorKind::LayerNormLinear, 4, 3});
  CHECK_THROWS_WITH_AS(p->forward(torch::zeros({2, 5, 6})), doctest::Contains("[2, 5, 6]"), repa::InputError);
  CHECK_THROWS_WITH_AS(p->forward(torch::zeros({5, 4})), doctest::Contains("[5, 4]"), repa::InputError);
  Projector conv(ProjectorConfig{ProjectorKind::Conv, 4, 3, 0, 3});
  CHECK_THROWS_AS(conv->forward(torch::zeros({1, 6, 4})), repa::InputError);
  CHECK_THROWS_WITH_AS(conv->forward(torch::zeros({1, 6, 4}), TokenGrid{2, 2}), doctest::Contains("2x2"),
                       repa::InputError);
  CHECK_THROWS_WITH_AS(Projector(ProjectorConfig{ProjectorKind::Conv, 4, 3, 0, 4}),
                       doctest::Contains("irepa_projector_kernel_size"), repa::InputError);
  CHECK(parse_projector_kind("mlp") == ProjectorKind::Mlp);
  CHECK_THROWS_WITH_AS(parse_projector_kind("transformer"), doctest::Contains("layernorm_linear"), repa::InputError);
}

TEST_CASE("mlp starts as REPA's does: xavier_uniform weights, zero biases (SimpleTuner's head keeps torch's default)") {
  torch::manual_seed(3);
  Projector p(ProjectorConfig{ProjectorKind::Mlp, 64, 32, 256});
  for (auto* layer : {&p->fc0, &p->fc2, &p->fc4}) {
    const auto& w = (*layer)->weight;
    const double fan_out = static_cast<double>(w.size(0)), fan_in = static_cast<double>(w.size(1));
    // xavier_uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), variance a² / 3 = 2 / (fan_in + fan_out).
    const double bound = std::sqrt(6.0 / (fan_in + fan_out));
    CAPTURE(fan_in);
    CAPTURE(fan_out);
    CHECK(w.abs().max().item<double>() <= bound);
    CHECK(w.abs().max().item<double>() > 0.98 * bound);
    CHECK(w.var().item<double>() == doctest::Approx(2.0 / (fan_in + fan_out)).epsilon(0.05));
    CHECK(std::abs(w.mean().item<double>()) < 0.005);
    CHECK((*layer)->bias.abs().max().item<double>() == 0.0);
  }
  // LibTorch's default would bound the last layer's weights by 1/sqrt(256) = 0.0625, below xavier's 0.144.
  CHECK(p->fc4->weight.abs().max().item<double>() > 0.1);

  // SimpleTuner's LayerNorm + Linear head keeps PyTorch's nn.Linear default: bias U(-1/sqrt(fan_in), ...), not 0.
  Projector simpletuner(ProjectorConfig{ProjectorKind::LayerNormLinear, 64, 32});
  CHECK(simpletuner->linear->bias.abs().max().item<double>() > 0.0);
  CHECK(simpletuner->linear->weight.abs().max().item<double>() <= 1.0 / std::sqrt(64.0));
}
