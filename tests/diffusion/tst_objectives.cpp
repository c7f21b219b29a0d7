// Interpolants, targets, the SD scaled-linear VP schedule and timestep sampling, against hand-worked values.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/base/error.h"
#include "core/diffusion/objective.h"

using namespace repa::diffusion;

namespace {
double value_at(const torch::Tensor& t, int64_t i = 0) {
  return t.flatten()[i].item<double>();
}
}  // namespace

TEST_CASE("linear interpolant: x_t = (1 - t) x + t eps, target eps - x") {
  Objective objective(ObjectiveKind::Linear);
  const auto x = torch::full({2, 1}, 2.0), eps = torch::full({2, 1}, -1.0);
  const auto b = objective.noise(x, eps, torch::tensor({0.25f, 1.0f}));
  CHECK(value_at(b.x_t, 0) == doctest::Approx(1.25));  // 0.75·2 + 0.25·(−1)
  CHECK(value_at(b.x_t, 1) == doctest::Approx(-1.0));  // pure noise at t = 1
  CHECK(value_at(b.target, 0) == doctest::Approx(-3.0));
  CHECK(value_at(b.target, 1) == doctest::Approx(-3.0));
  CHECK(value_at(b.timesteps, 0) == doctest::Approx(250.0));
  CHECK(value_at(b.model_time, 0) == doctest::Approx(0.25));
}

TEST_CASE("cosine interpolant: x_t = cos(pi t/2) x + sin(pi t/2) eps, target its time derivative") {
  Objective objective(ObjectiveKind::Cosine);
  const auto b = objective.noise(torch::full({1, 1}, 2.0), torch::full({1, 1}, -1.0), torch::tensor({0.5f}));
  CHECK(value_at(b.x_t) == doctest::Approx(0.7071067812).epsilon(1e-6));      // √½·(2 − 1)
  CHECK(value_at(b.target) == doctest::Approx(-3.3321622036).epsilon(1e-6));  // (π/2)(−√½ − 2√½)
  const auto c = objective.path(torch::tensor({0.0, 1.0}, torch::kFloat64));
  CHECK(value_at(c.alpha, 0) == doctest::Approx(1.0));
  CHECK(value_at(c.sigma, 1) == doctest::Approx(1.0));
  CHECK(value_at(c.d_sigma, 0) == doctest::Approx(M_PI / 2));
  CHECK(value_at(c.d_alpha, 1) == doctest::Approx(-M_PI / 2));
}

TEST_CASE("SD scaled-linear schedule: beta 0.00085 .. 0.012 over 1000 steps") {
  const auto s = VpSchedule::scaled_linear();
  CHECK(s.num_train_timesteps == 1000);
  CHECK(value_at(s.betas, 0) == doctest::Approx(0.00085).epsilon(1e-6));
  CHECK(value_at(s.betas, 999) == doctest::Approx(0.012).epsilon(1e-6));
  CHECK(value_at(s.alphas_cumprod, 0) == doctest::Approx(0.99915).epsilon(1e-6));
  CHECK(value_at(s.alphas_cumprod, 999) == doctest::Approx(0.00466).epsilon(2e-3));  // SD's final ᾱ ≈ 0.0047
  CHECK(value_at(s.snr(torch::tensor({0}))) == doctest::Approx(0.99915 / 0.00085).epsilon(1e-4));
  CHECK_THROWS_AS(s.alpha_bar(torch::tensor({1000})), repa::InputError);
}

TEST_CASE("VP epsilon and v targets at step 0") {
  const auto x = torch::full({1, 1}, 2.0), eps = torch::full({1, 1}, -1.0);
  const auto k = torch::tensor({0}, torch::kLong);
  const double a = std::sqrt(0.99915), s = std::sqrt(0.00085);
  const auto e = Objective(ObjectiveKind::VpEpsilon).noise(x, eps, k);
  CHECK(value_at(e.x_t) == doctest::Approx(2 * a - s).epsilon(1e-6));  // 1.96999506
  CHECK(value_at(e.target) == doctest::Approx(-1.0));
  CHECK(value_at(e.model_time) == 0.0);
  const auto v = Objective(ObjectiveKind::VpV).noise(x, eps, torch::tensor({999}, torch::kLong));
  const double a9 = std::sqrt(0.00466009602), s9 = std::sqrt(1 - 0.00466009602);
  CHECK(value_at(v.target) == doctest::Approx(a9 * -1.0 - s9 * 2.0).epsilon(1e-5));  // √ᾱ·ε − √(1−ᾱ)·x
  CHECK(value_at(v.timesteps) == 999.0);
  CHECK(value_at(v.t) == doctest::Approx(0.999));
}

TEST_CASE("timestep sampling: uniform and logit-normal ranges and medians; VP integer steps") {
  torch::manual_seed(3);
  TimestepSampler uniform;
  const auto u = uniform.sample_unit(20000);
  CHECK(u.min().item<double>() >= 0.0);
  CHECK(u.max().item<double>() < 1.0);
  CHECK(u.mean().item<double>() == doctest::Approx(0.5).epsilon(0.02));
  const auto logit =
      TimestepSampler::from_json({{"studio", {{"timestep_sampling", "logit_normal"}}}, {"flow_sigmoid_scale", 1.0}});
  CHECK((logit.kind == TimestepSampling::LogitNormal));
  const auto l = logit.sample_unit(20000);
  // sigmoid(N(0,1)): median 0.5, and P(u < sigmoid(1)) = Φ(1) = 0.8413.
  CHECK(l.median().item<double>() == doctest::Approx(0.5).epsilon(0.02));
  CHECK(l.lt(1.0 / (1.0 + std::exp(-1.0))).to(torch::kDouble).mean().item<double>() ==
        doctest::Approx(0.8413).epsilon(0.02));
  const auto steps = Objective(ObjectiveKind::VpEpsilon).sample_time(uniform, 5000);
  CHECK((steps.scalar_type() == torch::kLong));
  CHECK(steps.min().item<int64_t>() >= 0);
  CHECK(steps.max().item<int64_t>() <= 999);
  CHECK_THROWS_AS(TimestepSampler::from_json({{"studio", {{"timestep_sampling", "beta"}}}}), repa::InputError);
  CHECK_THROWS_AS(objective_from_name("edm"), repa::InputError);
  CHECK((Objective::from_json({{"studio", {{"objective", "vp_v"}}}}).kind() == ObjectiveKind::VpV));
}
