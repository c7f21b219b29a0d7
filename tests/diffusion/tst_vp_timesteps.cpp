// SimpleTuner's VP timestep selection and noise settings: bias weights (generate_timestep_weights), one timestep
// per segment (segmented_timestep_selection), offset noise per sample and channel, input perturbation fading out.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include "core/diffusion/vp_timesteps.h"
#include "tests/test_support.h"

using repa::diffusion::VpNoiseSettings;
using repa::diffusion::VpTimestepSampler;
using repa::test::contains;
using repa::test::error_of;

TEST_CASE("timestep bias weights follow generate_timestep_weights") {
  auto none = VpTimestepSampler::from_config(nlohmann::json::object());
  CHECK(none.weights().sum().item<double>() == doctest::Approx(1000.0));  // unnormalised ones, as SimpleTuner
  auto later = VpTimestepSampler::from_config(
      {{"timestep_bias_strategy", "later"}, {"timestep_bias_multiplier", 3.0}, {"timestep_bias_portion", 0.25}});
  // 750 ones and 250 threes, normalised: 1/1500 and 3/1500.
  CHECK(later.weights()[0].item<double>() == doctest::Approx(1.0 / 1500));
  CHECK(later.weights()[749].item<double>() == doctest::Approx(1.0 / 1500));
  CHECK(later.weights()[750].item<double>() == doctest::Approx(3.0 / 1500));
  auto earlier = VpTimestepSampler::from_config({{"timestep_bias_strategy", "earlier"}, {"timestep_bias_multiplier", 2.0}});
  CHECK(earlier.weights()[249].item<double>() == doctest::Approx(2.0 / 1250));
  CHECK(earlier.weights()[250].item<double>() == doctest::Approx(1.0 / 1250));
  auto range = VpTimestepSampler::from_config({{"timestep_bias_strategy", "range"},
                                               {"timestep_bias_begin", 200},
                                               {"timestep_bias_end", 500},
                                               {"timestep_bias_multiplier", 5.0}});
  CHECK(range.weights()[199].item<double>() == doctest::Approx(1.0 / 2200));
  CHECK(range.weights()[200].item<double>() == doctest::Approx(5.0 / 2200));
  CHECK(range.weights()[500].item<double>() == doctest::Approx(1.0 / 2200));
  CHECK(contains(error_of([] { VpTimestepSampler::from_config({{"timestep_bias_strategy", "later"},
                                                               {"timestep_bias_multiplier", 0.0}}); }),
                 "timestep_bias_multiplier must be positive"));
  CHECK(contains(error_of([] { VpTimestepSampler::from_config({{"timestep_bias_strategy", "range"},
                                                               {"timestep_bias_end", 1200}}); }),
                 "timestep_bias_end"));
  CHECK(contains(error_of([] { VpTimestepSampler::from_config({{"timestep_bias_strategy", "latter"}}); }),
                 "'latter' is unknown"));
}

TEST_CASE("a batch takes one timestep per segment, from the last timestep down") {
  torch::manual_seed(3);
  const auto sampler = VpTimestepSampler::from_config(nlohmann::json::object());
  for (int round = 0; round < 50; ++round) {
    const auto t = sampler.sample(4);
    // Segments of 250: [749, 999], [499, 749], [249, 499], [0, 249] (neighbours share a boundary).
    CHECK(t[0].item<int64_t>() >= 749);
    CHECK(t[1].item<int64_t>() >= 499);
    CHECK(t[1].item<int64_t>() <= 749);
    CHECK(t[2].item<int64_t>() >= 249);
    CHECK(t[2].item<int64_t>() <= 499);
    CHECK(t[3].item<int64_t>() <= 249);
  }
  // With a 'later' bias and segments disabled, the biased quarter is drawn 3/(3·0.25 + 0.75) · 0.25 = 1/2 of the
  // time.
  const auto free = VpTimestepSampler::from_config({{"timestep_bias_strategy", "later"},
                                                    {"timestep_bias_multiplier", 3.0},
                                                    {"disable_segmented_timestep_sampling", true}});
  CHECK_FALSE(free.segmented());
  const auto draws = free.sample(20000);
  const double share = (draws >= 750).to(torch::kFloat64).mean().item<double>();
  CHECK(share == doctest::Approx(0.5).epsilon(0.03));
}

TEST_CASE("offset noise is one constant per sample and channel; input perturbation fades out") {
  torch::manual_seed(1);
  const auto noise = torch::zeros({3, 4, 8, 8});
  VpNoiseSettings off;
  CHECK(off.offset_noise(noise).is_same(noise));
  auto on = VpNoiseSettings::from_config({{"offset_noise", true}, {"noise_offset", 0.5}, {"noise_offset_probability", 1.0}});
  const auto shifted = on.offset_noise(noise);
  CHECK(shifted.std({2, 3}).max().item<double>() == doctest::Approx(0.0));  // constant over the image
  CHECK(shifted.abs().max().item<double>() > 0.0);
  on.offset_probability = 0.0;
  CHECK(on.offset_noise(noise).is_same(noise));
  auto perturb = VpNoiseSettings::from_config({{"input_perturbation", 0.1}, {"input_perturbation_steps", 100}});
  const auto big = torch::zeros({64, 4, 16, 16});
  CHECK((perturb.input_noise(big, 0) - big).std().item<double>() == doctest::Approx(0.1).epsilon(0.05));
  CHECK((perturb.input_noise(big, 50) - big).std().item<double>() == doctest::Approx(0.05).epsilon(0.05));
  CHECK(perturb.input_noise(big, 100).is_same(big));
  CHECK(contains(error_of([] { VpNoiseSettings::from_config({{"noise_offset_probability", 2.0}}); }),
                 "noise_offset_probability"));
}
