// Samplers on velocity/noise fields whose endpoints are known exactly, time grids, guidance interval.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/base/error.h"
#include "core/diffusion/samplers.h"
#include "tests/test_support.h"

using namespace repa::diffusion;

namespace {

// For data that is the single point x*, the linear path's exact velocity is v(x, t) = (x − x*)/t:
// every Euler step keeps x on the straight line to x*, so any step count lands on x* exactly.
DenoiserFn point_velocity(double target) {
  return [target](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor&) {
    return (x - target) / t.reshape({-1, 1});
  };
}

SamplerConfig config_of(SamplerKind kind, int64_t steps) {
  SamplerConfig c;
  c.kind = kind;
  c.num_steps = steps;
  return c;
}

}  // namespace

TEST_CASE("time grids: Euler 1 → 0, Euler–Maruyama 1 → 0.04 then 0, DDIM trailing steps") {
  const auto e = euler_time_grid(4);
  CHECK(e.allclose(torch::tensor({1.0, 0.75, 0.5, 0.25, 0.0}, torch::kFloat64)));
  const auto em = euler_maruyama_time_grid(3);
  CHECK(em.allclose(torch::tensor({1.0, 0.52, 0.04, 0.0}, torch::kFloat64)));
  CHECK((ddim_timesteps(1000, 4) == std::vector<int64_t>{999, 749, 499, 249}));
  CHECK((ddim_timesteps(1000, 3) == std::vector<int64_t>{999, 666, 332}));
}

TEST_CASE("Euler integrates the single-point velocity field to its exact endpoint") {
  const Objective objective(ObjectiveKind::Linear);
  const auto noise = torch::tensor({{-1.5f}, {0.3f}, {2.0f}});
  const auto labels = torch::zeros({3}, torch::kLong);
  for (const int64_t steps : {1, 3, 7}) {
    const auto x = euler_sample(point_velocity(3.0), objective, config_of(SamplerKind::Euler, steps), noise, labels);
    CHECK(x.allclose(torch::full({3, 1}, 3.0, torch::kFloat64), 0.0, 1e-6));
  }
  // A constant field v = c moves every point by −c from t = 1 to 0.
  const DenoiserFn constant = [](const torch::Tensor& x, const torch::Tensor&, const torch::Tensor&) {
    return torch::full_like(x, 0.5);
  };
  CHECK(euler_sample(constant, objective, config_of(SamplerKind::Euler, 5), noise, labels)
            .allclose(noise.to(torch::kFloat64) - 0.5, 0.0, 1e-6));
}

TEST_CASE("score from velocity on the linear path is the Gaussian marginal's score") {
  // x* = 1, t = 0.5, x = 2: v = (x − x*)/t = 2; score = −(x − (1 − t)x*)/t² = −6.
  const auto s = score_from_velocity(Objective(ObjectiveKind::Linear), torch::full({1}, 2.0, torch::kFloat64),
                                     torch::full({1}, 2.0, torch::kFloat64), 0.5);
  CHECK(s.item<double>() == doctest::Approx(-6.0));
}

TEST_CASE("Euler–Maruyama on the single-point field: mean x*, spread from the hand-worked recursion") {
  // With x = (1 − t)x* + r the step gives r ← r(1 + 2dt/t) + √(2t|dt|)·ξ and the last deterministic
  // step returns x* − r: Var r starts at 1 and follows V ← V(1 + 2dt/t)² + 2t|dt|.
  torch::manual_seed(4);
  const int64_t n = 20000, steps = 6;
  const auto grid = euler_maruyama_time_grid(steps);
  double variance = 1.0;
  for (int64_t i = 0; i + 2 < grid.size(0); ++i) {
    const double t = grid[i].item<double>(), dt = grid[i + 1].item<double>() - t;
    variance = variance * std::pow(1 + 2 * dt / t, 2) + 2 * t * std::abs(dt);
  }
  const auto x = euler_maruyama_sample(point_velocity(3.0), Objective(ObjectiveKind::Linear),
                                       config_of(SamplerKind::EulerMaruyama, steps), torch::randn({n, 1}),
                                       torch::zeros({n}, torch::kLong));
  CHECK(std::abs(x.mean().item<double>() - 3.0) < 4 * std::sqrt(variance / n));
  CHECK(x.std().item<double>() == doctest::Approx(std::sqrt(variance)).epsilon(0.03));
}

TEST_CASE("DDIM lands exactly on x* for exact epsilon and v predictions of a single point") {
  const double target = -0.7;
  const auto schedule = VpSchedule::scaled_linear();
  const auto abar = schedule.alphas_cumprod.to(torch::kFloat64);
  auto eps_of = [=](const torch::Tensor& x, const torch::Tensor& k) {
    const auto a = abar.index({k.to(torch::kLong)}).reshape({-1, 1}).to(x.scalar_type());
    return (x - a.sqrt() * target) / (1 - a).sqrt();
  };
  const DenoiserFn eps_model = [=](const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor&) {
    return eps_of(x, k);
  };
  const DenoiserFn v_model = [=](const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor&) {
    const auto a = abar.index({k.to(torch::kLong)}).reshape({-1, 1}).to(x.scalar_type());
    return a.sqrt() * eps_of(x, k) - (1 - a).sqrt() * target;
  };
  const auto noise = torch::tensor({{1.0}, {-2.0}}, torch::kFloat64);
  const auto labels = torch::zeros({2}, torch::kLong);
  for (const int64_t steps : {1, 4, 25}) {
    CHECK(
        ddim_sample(eps_model, Objective(ObjectiveKind::VpEpsilon), config_of(SamplerKind::Ddim, steps), noise, labels)
            .allclose(torch::full({2, 1}, target, torch::kFloat64), 0.0, 1e-9));
    CHECK(ddim_sample(v_model, Objective(ObjectiveKind::VpV), config_of(SamplerKind::Ddim, steps), noise, labels)
              .allclose(torch::full({2, 1}, target, torch::kFloat64), 0.0, 1e-9));
  }
}

TEST_CASE("classifier-free guidance applies only inside [low, high]") {
  // Conditional velocity 1, unconditional 0: guided velocity = scale inside the interval, 1 outside.
  int calls = 0, doubled = 0;
  const DenoiserFn model = [&](const torch::Tensor& x, const torch::Tensor&, const torch::Tensor& y) {
    ++calls;
    if (x.size(0) == 2) ++doubled;
    return y.ne(10).to(x.scalar_type()).reshape({-1, 1});
  };
  SamplerConfig config = config_of(SamplerKind::Euler, 10);
  config.guidance_scale = 3.0;
  config.guidance_low = 0.25;
  config.guidance_high = 0.65;
  config.null_label = 10;
  const auto x = euler_sample(model, Objective(ObjectiveKind::Linear), config, torch::zeros({1, 1}),
                              torch::tensor({4}, torch::kLong));
  // t = 0.6, 0.5, 0.4, 0.3 guided (velocity 3), six other steps velocity 1; each step has dt = −0.1.
  CHECK(x.item<double>() == doctest::Approx(-(6 * 0.1 * 1 + 4 * 0.1 * 3)));
  CHECK(calls == 10);
  CHECK(doubled == 4);
  CHECK(guidance_active(config, 0.25));
  CHECK(!guidance_active(config, 0.7));
}

TEST_CASE("samplers refuse objectives they do not fit; config from the resolved JSON") {
  const auto noise = torch::zeros({1, 1});
  const auto labels = torch::zeros({1}, torch::kLong);
  CHECK_THROWS_AS(
      sample(point_velocity(0), Objective(ObjectiveKind::Linear), config_of(SamplerKind::Ddim, 2), noise, labels),
      repa::InputError);
  CHECK_THROWS_AS(
      sample(point_velocity(0), Objective(ObjectiveKind::VpV), config_of(SamplerKind::Euler, 2), noise, labels),
      repa::InputError);
  const auto c = SamplerConfig::from_json(
      {{"validation_num_inference_steps", 30},
       {"validation_guidance", 4.0},
       {"studio", {{"sampler", "euler_maruyama"}, {"guidance_interval_low", 0.1}, {"guidance_interval_high", 0.7}}}},
      1000);
  CHECK((c.kind == SamplerKind::EulerMaruyama));
  CHECK(c.num_steps == 30);
  CHECK(c.guidance_scale == 4.0);
  CHECK(c.guidance_low == 0.1);
  CHECK(c.null_label == 1000);
  CHECK_THROWS_AS(SamplerConfig::from_json({{"studio", {{"sampler", "heun"}}}}, 10), repa::InputError);
  CHECK_THROWS_AS(
      SamplerConfig::from_json({{"studio", {{"guidance_interval_low", 0.8}, {"guidance_interval_high", 0.2}}}}, 10),
      repa::InputError);
}

TEST_CASE("Karras sigmas, VP sigmas and diffusers' sigma-to-timestep interpolation") {
  const auto k = karras_sigmas(0.03, 14.6, 5);
  CHECK(k[0].item<double>() == doctest::Approx(14.6));
  CHECK(k[4].item<double>() == doctest::Approx(0.03));
  const double mid = std::pow((std::pow(14.6, 1 / 7.0) + std::pow(0.03, 1 / 7.0)) / 2, 7.0);
  CHECK(k[2].item<double>() == doctest::Approx(mid));
  const auto schedule = VpSchedule::scaled_linear();
  const auto sigmas = vp_sigmas(schedule);
  const auto log_sigmas = sigmas.log();
  for (const int64_t step : {0, 1, 500, 998, 999})
    CHECK(sigma_to_timestep(sigmas[step].item<double>(), log_sigmas) == doctest::Approx(step).epsilon(1e-9));
  // Halfway in log σ between two steps is halfway in time; outside the range it clamps.
  const double between = std::exp((log_sigmas[10].item<double>() + log_sigmas[11].item<double>()) / 2);
  CHECK(sigma_to_timestep(between, log_sigmas) == doctest::Approx(10.5));
  CHECK(sigma_to_timestep(1e-6, log_sigmas) == doctest::Approx(0.0));
  CHECK(sigma_to_timestep(1e6, log_sigmas) == doctest::Approx(999.0));
  // SD's schedule: σ from 14.61 to 0.0292; the grid starts at step 999, falls, and ends at σ = 0.
  const auto [grid, timesteps] = dpmpp_karras_grid(schedule, 10);
  CHECK(grid.numel() == 11);
  CHECK(grid[0].item<double>() == doctest::Approx(14.6146).epsilon(1e-4));
  CHECK(grid[9].item<double>() == doctest::Approx(0.0292).epsilon(1e-3));
  CHECK(grid[10].item<double>() == 0.0);
  CHECK(timesteps.front() == 999);
  CHECK(timesteps.back() == 0);
  CHECK(std::is_sorted(timesteps.rbegin(), timesteps.rend()));
}

TEST_CASE("DPM++ 2M Karras integrates the probability-flow ODE of Gaussian data to second order") {
  // Data N(0, s²): the exact denoiser is s²/(s² + σ²)·x_k with x_k = x_vp / α, and the ODE maps the
  // starting latent to x_k(σ_max)·s/√(s² + σ_max²). A fine schedule (10^5 steps) keeps the rounding of the
  // model's timestep out of the error.
  const double s2 = 0.25;
  const auto schedule = VpSchedule::scaled_linear(100000, 0.00085 / 100, 0.012 / 100);  // SD's schedule, 100x finer
  const auto log_sigmas = vp_sigmas(schedule).log();
  auto sigma_at = [&](double t) {
    const auto lo = static_cast<int64_t>(std::floor(t));
    const auto hi = std::min<int64_t>(lo + 1, log_sigmas.size(0) - 1);
    const double w = t - static_cast<double>(lo);
    return std::exp((1 - w) * log_sigmas[lo].item<double>() + w * log_sigmas[hi].item<double>());
  };
  auto model_for = [&](ObjectiveKind kind) -> DenoiserFn {
    return [=](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor&) {
      const double sigma = sigma_at(t[0].item<double>());
      const double alpha = 1 / std::sqrt(1 + sigma * sigma), sigma_vp = sigma * alpha;
      const auto x_k = x / alpha;
      const auto x0 = s2 / (s2 + sigma * sigma) * x_k;
      const auto eps = (x_k - x0) / sigma;
      return kind == ObjectiveKind::VpEpsilon ? eps : alpha * eps - sigma_vp * x0;
    };
  };
  const auto noise = torch::tensor({{1.0}, {-2.0}, {0.5}}, torch::kFloat64);
  const auto labels = torch::zeros({3}, torch::kLong);
  for (const auto kind : {ObjectiveKind::VpEpsilon, ObjectiveKind::VpV}) {
    std::vector<double> errors;
    for (const int64_t steps : {8, 16, 32}) {
      const auto [grid, timesteps] = dpmpp_karras_grid(schedule, steps);
      const double s_max = grid[0].item<double>();
      const auto exact = noise * std::sqrt(1 + s_max * s_max) * std::sqrt(s2 / (s2 + s_max * s_max));
      const auto x = dpmpp_2m_karras_sample(model_for(kind), Objective(kind, schedule),
                                            config_of(SamplerKind::DpmPP2MKarras, steps), noise, labels);
      errors.push_back((x - exact).abs().max().item<double>());
    }
    CAPTURE(errors[0]);
    CAPTURE(errors[1]);
    CAPTURE(errors[2]);
    CHECK(errors[0] < 0.2);  // 8 steps: 0.14 on samples of size up to 1
    CHECK(errors[1] < errors[0] / 3);  // second order: halving the step divides the error by about 4
    CHECK(errors[2] < errors[1] / 3);
  }
  CHECK(repa::test::contains(
      repa::test::error_of([&] {
        (void)sample(model_for(ObjectiveKind::VpEpsilon), Objective(ObjectiveKind::Linear),
                     config_of(SamplerKind::DpmPP2MKarras, 4), noise, labels);
      }),
      "dpmpp_2m_karras needs a VP objective"));
}
