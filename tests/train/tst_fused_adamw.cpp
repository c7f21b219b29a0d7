// FusedAdamW against LibTorch's AdamW: the same trajectory, the same state, fallbacks, checkpoints.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <vector>

#include "core/train/fused_adamw.h"

using namespace repa;

namespace {
std::vector<torch::Tensor> make_params(int seed) {
  torch::manual_seed(seed);
  // Lengths around the 8-float vectors and the parallel grain.
  return {torch::randn({3, 5}, torch::requires_grad()), torch::randn({40001}, torch::requires_grad()),
          torch::randn({7}, torch::requires_grad())};
}

void set_grads(std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(100 + step);
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p) * (step + 1);
}
}  // namespace

TEST_CASE("FusedAdamW follows torch::optim::AdamW step for step, with weight decay and bias correction") {
  for (const double wd : {0.0, 0.05}) {
    auto ours = make_params(1), theirs = make_params(1);
    const auto options = torch::optim::AdamWOptions(3e-3).betas({0.9, 0.99}).eps(1e-8).weight_decay(wd);
    train::FusedAdamW fused(ours, options);
    torch::optim::AdamW reference(theirs, options);
    for (int step = 0; step < 6; ++step) {
      set_grads(ours, step);
      set_grads(theirs, step);
      fused.step();
      reference.step();
    }
    for (size_t i = 0; i < ours.size(); ++i) {
      CHECK(torch::allclose(ours[i], theirs[i], 1e-6, 1e-7));
      const auto& a = static_cast<torch::optim::AdamWParamState&>(*fused.state().at(train::optimizer_state_key(ours[i])));
      const auto& b =
          static_cast<torch::optim::AdamWParamState&>(*reference.state().at(train::optimizer_state_key(theirs[i])));
      CHECK(a.step() == 6);
      CHECK(a.step() == b.step());
      CHECK(torch::allclose(a.exp_avg(), b.exp_avg(), 1e-6, 1e-8));
      CHECK(torch::allclose(a.exp_avg_sq(), b.exp_avg_sq(), 1e-6, 1e-10));
    }
  }
}

TEST_CASE("FusedAdamW skips parameters without gradients and defers to AdamW for amsgrad and strided tensors") {
  auto ours = make_params(2), theirs = make_params(2);
  train::FusedAdamW fused(ours, torch::optim::AdamWOptions(1e-2));
  set_grads(ours, 0);
  ours[2].mutable_grad() = torch::Tensor();
  const auto before = ours[2].detach().clone();
  fused.step();
  CHECK(torch::equal(ours[2], before));
  CHECK(fused.state().count(train::optimizer_state_key(ours[2])) == 0);

  for (const bool amsgrad : {true, false}) {
    auto a = make_params(3), b = make_params(3);
    if (!amsgrad) {  // a transposed view: not contiguous, so the whole step goes through AdamW
      a[0] = torch::randn({5, 3}).t().requires_grad_(true);
      b[0] = a[0].detach().clone().requires_grad_(true);
    }
    const auto options = torch::optim::AdamWOptions(1e-2).amsgrad(amsgrad);
    train::FusedAdamW f(a, options);
    torch::optim::AdamW r(b, options);
    for (int step = 0; step < 3; ++step) {
      set_grads(a, step);
      set_grads(b, step);
      f.step();
      r.step();
    }
    for (size_t i = 0; i < a.size(); ++i) CHECK(torch::allclose(a[i], b[i], 1e-6, 1e-7));
  }
}

TEST_CASE("FusedAdamW evaluates the closure and returns its loss") {
  auto w = torch::ones({4}, torch::requires_grad());
  train::FusedAdamW fused({w}, torch::optim::AdamWOptions(0.1));
  const auto loss = fused.step([&] {
    fused.zero_grad();
    auto l = (w * w).sum();
    l.backward();
    return l;
  });
  CHECK(loss.item<float>() == doctest::Approx(4.0));
  CHECK(w[0].item<float>() < 1.0f);
}
