// Self-attention against the written-out formula, the MLP block, patch embedding and checkpoint loading.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "core/base/error.h"
#include "core/nn/attention.h"
#include "core/nn/mlp.h"
#include "core/nn/patch_embed.h"
#include "core/nn/state_loading.h"

using namespace repa;

TEST_CASE("attention equals softmax(q kT / sqrt(d)) v per head, timm's qkv layout") {
  torch::manual_seed(1);
  nn::Attention attn(8, 2);
  const auto x = torch::randn({2, 5, 8});
  const auto got = attn->forward(x);
  // Written out: qkv columns are [q (heads × dh), k, v].
  const auto qkv = torch::nn::functional::linear(x, attn->qkv->weight, attn->qkv->bias);
  std::vector<torch::Tensor> heads;
  for (int h = 0; h < 2; ++h) {
    const auto q = qkv.narrow(2, 0 + 4 * h, 4), k = qkv.narrow(2, 8 + 4 * h, 4), v = qkv.narrow(2, 16 + 4 * h, 4);
    const auto w = torch::softmax(torch::matmul(q, k.transpose(1, 2)) / std::sqrt(4.0), -1);
    heads.push_back(torch::matmul(w, v));
  }
  const auto want = torch::nn::functional::linear(torch::cat(heads, 2), attn->proj->weight, attn->proj->bias);
  CHECK(torch::allclose(got, want, 1e-5, 1e-6));
  CHECK_THROWS_AS(nn::Attention(10, 3), InputError);
}

TEST_CASE("MLP uses the tanh GELU between fc1 and fc2") {
  torch::manual_seed(2);
  nn::Mlp mlp(4, 16);
  const auto x = torch::randn({3, 4});
  const auto h = mlp->fc1->forward(x);
  const auto gelu = 0.5 * h * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (h + 0.044715 * h.pow(3))));
  CHECK(torch::allclose(mlp->forward(x), mlp->fc2->forward(gelu), 1e-5, 1e-6));
}

TEST_CASE("patch embedding: token order and a clear error for sizes the patch does not divide") {
  nn::PatchEmbed embed(1, 1, 2);
  {
    torch::NoGradGuard g;
    embed->proj->weight.fill_(1.0);
    embed->proj->bias.zero_();
  }
  const auto x = torch::arange(16, torch::kFloat32).reshape({1, 1, 4, 4});
  const auto tokens = embed->forward(x);
  REQUIRE((tokens.sizes() == torch::IntArrayRef{1, 4, 1}));
  // Patch sums in row-major order: (0+1+4+5), (2+3+6+7), (8+9+12+13), (10+11+14+15).
  CHECK(tokens.flatten().equal(torch::tensor({10.0f, 18.0f, 42.0f, 50.0f})));
  try {
    embed->forward(torch::zeros({1, 1, 5, 4}));
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("5x4 is not divisible by patch_size 2") != std::string::npos);
  }
}

TEST_CASE("state loading names every missing, unexpected and wrongly shaped tensor") {
  nn::Mlp mlp(4, 8);
  std::map<std::string, torch::Tensor> tensors = {
      {"fc1.weight", torch::ones({8, 4}, torch::kFloat64)},  // converted to fp32
      {"fc1.bias", torch::ones({8})},
      {"fc2.weight", torch::ones({4, 7})},  // wrong shape
      {"fc3.weight", torch::ones({1})},     // unexpected
  };                                        // fc2.bias missing
  try {
    nn::load_state(*mlp, tensors, "model.safetensors");
    FAIL("no error");
  } catch (const InputError& e) {
    const std::string message = e.what();
    CHECK(message.find("model.safetensors") != std::string::npos);
    CHECK(message.find("missing (1): fc2.bias") != std::string::npos);
    CHECK(message.find("unexpected (1): fc3.weight") != std::string::npos);
    CHECK(message.find("fc2.weight: checkpoint [4, 7] vs model [4, 8]") != std::string::npos);
  }
  tensors["fc2.weight"] = torch::full({4, 8}, 2.0);
  tensors["fc2.bias"] = torch::zeros({4});
  nn::StateLoadOptions options;
  options.ignore_unexpected_prefixes = {"fc3."};
  nn::load_state(*mlp, tensors, "model.safetensors", options);
  CHECK((mlp->fc1->weight.scalar_type() == torch::kFloat32));
  CHECK(mlp->fc2->weight.eq(2.0).all().item<bool>());
  CHECK(mlp->fc1->bias.eq(1.0).all().item<bool>());
}
