#include "core/diffusion/flow_sigmas.h"

#include <doctest/doctest.h>

#include <cmath>

#include "core/base/error.h"
#include "tests/test_support.h"

using repa::diffusion::FlowShiftSettings;
using repa::diffusion::FlowSigmaDistribution;
using repa::diffusion::FlowSigmaSampler;

namespace {

FlowSigmaSampler make(const nlohmann::json& config) { return FlowSigmaSampler::from_config(config); }

std::string refusal(const nlohmann::json& config) {
  try {
    (void)make(config);
  } catch (const repa::InputError& e) {
    return e.what();
  }
  return "";
}

double median_of(const torch::Tensor& t) { return t.median().item<double>(); }

}  // namespace

TEST_CASE("the resolution-dependent shift is diffusers' calculate_shift, exp(mu)") {
  const FlowShiftSettings flux;
  CHECK(repa::diffusion::flow_shift_mu(256, flux) == doctest::Approx(0.5));
  CHECK(repa::diffusion::flow_shift_mu(4096, flux) == doctest::Approx(1.15));
  CHECK(repa::diffusion::flow_shift_mu(2176, flux) == doctest::Approx(0.825));
  // 1024 px → 128×128 latents → 64×64 patches = 4096 tokens; only when no static shift is set.
  auto autoshift = make({{"flow_schedule_shift", 0}, {"flow_schedule_auto_shift", true}});
  CHECK(autoshift.shift_for(128, 128) == doctest::Approx(std::exp(1.15)));
  CHECK(autoshift.shift_for(64, 64) == doctest::Approx(std::exp(flow_shift_mu(1024, flux))));
  CHECK(make({{"flow_schedule_shift", nullptr}, {"flow_schedule_auto_shift", true}}).shift_for(32, 32) ==
        doctest::Approx(std::exp(0.5)));
  // SimpleTuner's precedence: the static shift (default 3) wins over auto shift.
  CHECK(make({{"flow_schedule_auto_shift", true}}).shift_for(128, 128) == doctest::Approx(3.0));
  CHECK(make({{"flow_schedule_shift", 0}}).shift_for(128, 128) == doctest::Approx(1.0));
  const auto settings = FlowShiftSettings::from_scheduler_config(
      {{"base_image_seq_len", 256}, {"max_image_seq_len", 4096}, {"base_shift", 0.5}, {"max_shift", 1.16}});
  CHECK(settings.max_shift == doctest::Approx(1.16));
  CHECK(settings.patch_size == 2);
}

TEST_CASE("the shift maps sigma to s*sigma / (1 + (s - 1) sigma) and keeps the ends") {
  const auto shifted = repa::diffusion::shift_sigmas(torch::tensor({0.f, 0.25f, 0.5f, 1.f}), 3.0);
  CHECK(shifted[0].item<float>() == 0.f);
  CHECK(shifted[1].item<float>() == doctest::Approx(0.5));
  CHECK(shifted[2].item<float>() == doctest::Approx(0.75));
  CHECK(shifted[3].item<float>() == doctest::Approx(1.0));
}

TEST_CASE("logit-normal is sigmoid(scale * N(0,1)) from the default generator, then shifted") {
  auto sampler = make({{"flow_sigmoid_scale", 1.5}, {"flow_schedule_shift", 0}});
  CHECK(sampler.distribution() == FlowSigmaDistribution::LogitNormal);
  torch::manual_seed(7);
  const auto sigmas = sampler.sample(64, 32, 32);
  torch::manual_seed(7);
  const auto expected = torch::sigmoid(1.5 * torch::randn({64}));
  CHECK(torch::equal(sigmas, expected));
  // With the default shift 3, the median 0.5 moves to 0.75.
  auto shifted = make({});
  torch::manual_seed(1);
  CHECK(median_of(shifted.sample(20001, 32, 32)) == doctest::Approx(0.75).epsilon(0.02));
  // A dataset's timestep_sampling_offset moves the normal before the sigmoid.
  torch::manual_seed(3);
  const auto offset = sampler.sample(8, 32, 32, torch::kCPU, 0.5);
  torch::manual_seed(3);
  CHECK(torch::allclose(offset, torch::sigmoid(1.5 * (torch::randn({8}) + 0.5))));
}

TEST_CASE("uniform and beta schedules have their distributions' moments; precedence follows SimpleTuner") {
  torch::manual_seed(11);
  auto uniform = make({{"flow_use_uniform_schedule", true}, {"flow_use_beta_schedule", true}, {"flow_schedule_shift", 0}});
  CHECK(uniform.distribution() == FlowSigmaDistribution::Uniform);
  const auto u = uniform.sample(40000, 16, 16);
  CHECK(u.mean().item<double>() == doctest::Approx(0.5).epsilon(0.01));
  CHECK(u.var().item<double>() == doctest::Approx(1.0 / 12).epsilon(0.03));

  auto beta = make({{"flow_use_beta_schedule", true}, {"flux_fast_schedule", true}, {"flow_beta_schedule_alpha", 2.0},
                    {"flow_beta_schedule_beta", 5.0}, {"flow_schedule_shift", 0}});
  CHECK(beta.distribution() == FlowSigmaDistribution::Beta);
  const auto b = beta.sample(40000, 16, 16);
  CHECK(b.mean().item<double>() == doctest::Approx(2.0 / 7).epsilon(0.02));
  CHECK(b.var().item<double>() == doctest::Approx(10.0 / (49 * 8)).epsilon(0.05));
  CHECK(b.min().item<float>() >= 0.f);
  CHECK(b.max().item<float>() <= 1.f);
}

TEST_CASE("the Flux fast schedule draws 1.0 seven times in ten and is never shifted") {
  auto fast = make({{"flux_fast_schedule", true}, {"flow_schedule_shift", 5.0}});
  CHECK(fast.distribution() == FlowSigmaDistribution::FluxFast);
  torch::manual_seed(5);
  const auto s = fast.sample(20000, 128, 128);
  const double ones = (s == 1.0).to(torch::kFloat64).mean().item<double>();
  CHECK(ones == doctest::Approx(0.7).epsilon(0.03));
  CHECK(((s == 1.0) | (s == 0.75) | (s == 0.5) | (s == 0.25)).all().item<bool>());
}

TEST_CASE("the cubic-spline density follows SimpleTuner's PCHIP through the knots") {
  // Two knots [0, 1]: a linear density 2x, CDF x^2.
  const auto [x2, cdf2] = repa::diffusion::cubic_spline_cdf({0.0, 1.0});
  CHECK(x2.numel() == 4097);
  CHECK(cdf2[2048].item<float>() == doctest::Approx(0.25).epsilon(1e-4));
  CHECK(cdf2[-1].item<float>() == 1.f);
  // Three knots [0, 1, 0]: on each half the Hermite cubic 2l - l^2 (end slope 4, middle slope 0),
  // so CDF(0.25) = 5/32 and CDF(0.5) = 1/2.
  const auto [x3, cdf3] = repa::diffusion::cubic_spline_cdf({0.0, 1.0, 0.0});
  CHECK(cdf3[1024].item<float>() == doctest::Approx(5.0 / 32).epsilon(1e-4));
  CHECK(cdf3[2048].item<float>() == doctest::Approx(0.5).epsilon(1e-5));
  // Sampling inverts the CDF: the mean of the 2x density is 2/3.
  auto sampler = make({{"flow_cubic_schedule_weights", "[0, 1]"}, {"flow_schedule_shift", 0}});
  CHECK(sampler.distribution() == FlowSigmaDistribution::CubicSpline);
  torch::manual_seed(2);
  CHECK(sampler.sample(40000, 8, 8).mean().item<double>() == doctest::Approx(2.0 / 3).epsilon(0.01));
  // One knot is a uniform density; a comma list parses like a JSON list.
  auto single = make({{"flow_cubic_schedule_weights", 1.0}, {"flow_schedule_shift", 0}});
  torch::manual_seed(2);
  const auto u = single.sample(5, 8, 8);
  torch::manual_seed(2);
  CHECK(torch::equal(u, torch::rand({5})));
  CHECK(make({{"flow_cubic_schedule_weights", "1, 2; 1"}}).distribution() == FlowSigmaDistribution::CubicSpline);
}

TEST_CASE("custom lists: sigmas or timesteps, fixed-list draws, round-robin cycles and resumes") {
  auto fixed = make({{"flow_custom_timesteps", "250, 500, 1000"}});
  CHECK(fixed.distribution() == FlowSigmaDistribution::CustomList);
  CHECK(fixed.shift_for(128, 128) == 1.0);
  torch::manual_seed(9);
  const auto f = fixed.sample(300, 64, 64);
  CHECK(((f == 0.25) | (f == 0.5) | (f == 1.0)).all().item<bool>());
  CHECK((f == 0.25).any().item<bool>());

  auto rr = make({{"flow_custom_timesteps", nlohmann::json::array({0.1, 0.2, 0.3, 0.4, 0.5})},
                  {"flow_timesteps_mode", "round_robin"}});
  const auto first = rr.sample(2, 8, 8);
  const auto second = rr.sample(2, 8, 8);
  const auto third = rr.sample(2, 8, 8);
  CHECK(torch::allclose(first, torch::tensor({0.1f, 0.2f})));
  CHECK(torch::allclose(second, torch::tensor({0.3f, 0.4f})));
  CHECK(torch::allclose(third, torch::tensor({0.5f, 0.1f})));
  // A second process of a global batch of 4 takes the entries after the first process's two.
  auto rank1 = make({{"flow_custom_timesteps", "0.1,0.2,0.3,0.4,0.5"}, {"flow_timesteps_mode", "round-robin"}});
  CHECK(torch::allclose(rank1.sample(2, 8, 8, torch::kCPU, 0.0, 4, 2), torch::tensor({0.3f, 0.4f})));
  // Resume after 3 steps of batch 2: cursor 6 mod 5 = 1.
  auto resumed = make({{"flow_custom_timesteps", "0.1,0.2,0.3,0.4,0.5"}, {"flow_timesteps_mode", "round-robin"}});
  resumed.resume_round_robin(3, 2);
  CHECK(resumed.round_robin_cursor() == 1);
  CHECK(torch::allclose(resumed.sample(2, 8, 8), torch::tensor({0.2f, 0.3f})));
}

TEST_CASE("conflicts and bad values are refused by name") {
  CHECK(repa::test::contains(refusal({{"flow_cubic_schedule_weights", "[1,2]"}, {"flow_use_uniform_schedule", true},
                                {"flux_fast_schedule", true}}),
                       "flow_cubic_schedule_weights cannot be combined with flow_use_uniform_schedule, flux_fast_schedule"));
  CHECK(repa::test::contains(refusal({{"flow_cubic_schedule_weights", "[0, 0]"}}), "must contain a positive value"));
  CHECK(repa::test::contains(refusal({{"flow_cubic_schedule_weights", "[1, -2]"}}), "flow_cubic_schedule_weights[1]"));
  CHECK(repa::test::contains(refusal({{"flow_custom_timesteps", "0.1, abc"}}), "\"abc\" is not a number"));
  CHECK(repa::test::contains(refusal({{"flow_custom_timesteps", "0.1"}, {"flow_timesteps_mode", "cyclic"}}),
                       "flow_timesteps_mode"));
  CHECK(repa::test::contains(refusal({{"mixflow_enabled", true}}), "mixflow_enabled"));
  CHECK(repa::test::contains(refusal({{"flow_sigmoid_scale", -1}}), "flow_sigmoid_scale"));
  CHECK(repa::test::contains(refusal({{"flow_use_beta_schedule", true}, {"flow_beta_schedule_alpha", 0}}),
                       "flow_beta_schedule_alpha"));
  CHECK(repa::test::contains(refusal({{"flow_use_uniform_schedule", "maybe"}}), "flow_use_uniform_schedule"));
}

TEST_CASE("cubic and beta draws equal SimpleTuner's (values from its CubicSplineDistribution and torch's Beta)") {
  // Printed by SimpleTuner's timestep_distribution.CubicSplineDistribution([0.2, 1.0, 0.5, 0.1]) and
  // torch.distributions.Beta(2, 5) under torch 1.13, torch.manual_seed(4) before each sample((n,)).
  const auto [x, cdf] = repa::diffusion::cubic_spline_cdf({0.2, 1.0, 0.5, 0.1});
  CHECK(cdf[512].item<float>() == doctest::Approx(0.0930124893784523).epsilon(1e-6));
  CHECK(cdf[1024].item<float>() == doctest::Approx(0.2642415463924408).epsilon(1e-6));
  CHECK(cdf[2048].item<float>() == doctest::Approx(0.6586291193962097).epsilon(1e-6));
  CHECK(cdf[3000].item<float>() == doctest::Approx(0.8877540230751038).epsilon(1e-6));
  auto cubic = make({{"flow_cubic_schedule_weights", "[0.2, 1.0, 0.5, 0.1]"}, {"flow_schedule_shift", 0}});
  torch::manual_seed(4);
  const auto drawn = cubic.sample(4, 8, 8);
  const double expected[] = {0.43148502707481384, 0.43112990260124207, 0.12359296530485153, 0.21447382867336273};
  for (int i = 0; i < 4; ++i) CHECK(drawn[i].item<float>() == doctest::Approx(expected[i]).epsilon(1e-5));

  auto beta = make({{"flow_use_beta_schedule", true}, {"flow_beta_schedule_alpha", 2.0},
                    {"flow_beta_schedule_beta", 5.0}, {"flow_schedule_shift", 0}});
  torch::manual_seed(4);
  const auto b = beta.sample(3, 8, 8);
  const double expected_beta[] = {0.06059002876281738, 0.49309128522872925, 0.3243616819381714};
  for (int i = 0; i < 3; ++i) CHECK(b[i].item<float>() == doctest::Approx(expected_beta[i]).epsilon(1e-5));
}

TEST_CASE("inference sigmas follow diffusers' FlowMatchEulerDiscreteScheduler.set_timesteps") {
  // SD3: shift 3 (static): σ_min of the training grid is already shifted, 3/1002, and is shifted again.
  const auto sd3 = repa::diffusion::FlowSchedulerConfig::from_json({{"shift", 3.0}, {"num_train_timesteps", 1000}});
  const auto s = repa::diffusion::flow_inference_sigmas(sd3, 4);
  CHECK(s.numel() == 5);
  CHECK(s[0].item<double>() == doctest::Approx(1.0));
  const double sigma_min = 3.0 * 0.001 / (1 + 2.0 * 0.001);
  const double mid = 1.0 + (sigma_min - 1.0) / 3.0;  // linspace(1, σ_min, 4)[1]
  CHECK(s[1].item<double>() == doctest::Approx(3 * mid / (1 + 2 * mid)).epsilon(1e-6));
  CHECK(s[3].item<double>() == doctest::Approx(3 * sigma_min / (1 + 2 * sigma_min)).epsilon(1e-5));
  CHECK(s[4].item<double>() == 0.0);
  // Flux: dynamic shifting with μ, custom linspace(1, 1/n, n) as its pipeline passes.
  const auto flux = repa::diffusion::FlowSchedulerConfig::from_json(
      {{"shift", 3.0}, {"use_dynamic_shifting", true}, {"base_shift", 0.5}, {"max_shift", 1.15}});
  const double mu = repa::diffusion::flow_shift_mu(4096, flux.dynamic);
  const auto f = repa::diffusion::flow_inference_sigmas(flux, 4, {1.0, 0.75, 0.5, 0.25}, mu);
  for (int i = 0; i < 4; ++i) {
    const double sigma = 1.0 - 0.25 * i;
    CHECK(f[i].item<double>() == doctest::Approx(std::exp(mu) / (std::exp(mu) + 1 / sigma - 1)).epsilon(1e-6));
  }
  CHECK(repa::test::contains(repa::test::error_of([] {
                               (void)repa::diffusion::FlowSchedulerConfig::from_json({{"use_karras_sigmas", true}});
                             }),
                             "use_karras_sigmas"));
}
