// loss_type, huber_schedule/huber_c and min-SNR weighting as SimpleTuner defines them, by hand.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/base/error.h"
#include "core/diffusion/loss.h"

using namespace repa::diffusion;

namespace {
double value_at(const torch::Tensor& t, int64_t i = 0) {
  return t.flatten()[i].item<double>();
}
}  // namespace

TEST_CASE("element-wise l2, huber and smooth_l1 (pseudo-Huber forms)") {
  const auto p = torch::tensor({1.0f, 0.0f}), y = torch::tensor({0.0f, 0.0f});
  const auto c = torch::tensor({0.1f, 0.1f});
  CHECK(value_at(elementwise_loss(p, y, LossType::L2, c)) == doctest::Approx(1.0));
  // huber: 2c(√(1 + c²) − c); smooth_l1: 2(√(1 + c²) − c); both 0 at zero error.
  CHECK(value_at(elementwise_loss(p, y, LossType::Huber, c)) == doctest::Approx(0.1809975124).epsilon(1e-6));
  CHECK(value_at(elementwise_loss(p, y, LossType::SmoothL1, c)) == doctest::Approx(1.8099751242).epsilon(1e-6));
  CHECK(value_at(elementwise_loss(p, y, LossType::Huber, c), 1) == doctest::Approx(0.0));
  CHECK_THROWS_AS(elementwise_loss(p, torch::zeros({3}), LossType::L2, c), repa::InputError);
}

TEST_CASE("huber_c schedules: constant, exponential, snr (flow and VP forms)") {
  LossConfig config;
  config.type = LossType::Huber;
  config.huber_c = 0.1;
  const Objective flow(ObjectiveKind::Linear), vp(ObjectiveKind::VpEpsilon);
  const auto ts = torch::tensor({0.0f, 500.0f, 1000.0f});
  config.huber_schedule = HuberSchedule::Constant;
  CHECK(value_at(scheduled_huber_c(config, flow, ts), 1) == doctest::Approx(0.1));
  config.huber_schedule = HuberSchedule::Exponential;  // exp(ln(c)·k/1000) = c^(k/1000)
  const auto e = scheduled_huber_c(config, flow, ts);
  CHECK(value_at(e, 0) == doctest::Approx(1.0));
  CHECK(value_at(e, 1) == doctest::Approx(std::sqrt(0.1)).epsilon(1e-6));
  CHECK(value_at(e, 2) == doctest::Approx(0.1).epsilon(1e-6));
  config.huber_schedule = HuberSchedule::Snr;
  // flow at σ = 0.5: s = √(0.5/0.5001), c' = 0.9/(1 + s)² + 0.1
  CHECK(value_at(scheduled_huber_c(config, flow, ts), 1) == doctest::Approx(0.3250224983).epsilon(1e-6));
  // VP at step 499: s = √((1 − ᾱ)/ᾱ), ᾱ_499 = 0.27766946
  CHECK(value_at(scheduled_huber_c(config, vp, torch::tensor({499}, torch::kLong))) ==
        doctest::Approx(0.2318260581).epsilon(1e-5));
}

TEST_CASE("min-SNR-gamma weights: min(snr, g)/snr for eps, min(snr, g)/(snr + 1) for v") {
  const auto ts = torch::tensor({0, 999}, torch::kLong);
  const double snr0 = 1175.44031, snr999 = 0.00468191411;
  const auto w_eps = min_snr_weights(Objective(ObjectiveKind::VpEpsilon), ts, 5.0);
  CHECK(value_at(w_eps, 0) == doctest::Approx(5.0 / snr0).epsilon(1e-4));
  CHECK(value_at(w_eps, 1) == doctest::Approx(1.0));
  const auto w_v = min_snr_weights(Objective(ObjectiveKind::VpV), ts, 5.0);
  CHECK(value_at(w_v, 0) == doctest::Approx(5.0 / (snr0 + 1)).epsilon(1e-4));
  CHECK(value_at(w_v, 1) == doctest::Approx(snr999 / (snr999 + 1)).epsilon(1e-4));
  CHECK_THROWS_AS(min_snr_weights(Objective(ObjectiveKind::Linear), ts, 5.0), repa::InputError);
}

TEST_CASE("diffusion_loss: per-sample means, SNR weights only for VP, snr_weight for plain VP l2") {
  const auto config_json = nlohmann::json{{"loss_type", "l2"}, {"snr_gamma", 5.0}};
  const auto config = LossConfig::from_json(config_json);
  REQUIRE(config.snr_gamma.has_value());
  const Objective vp(ObjectiveKind::VpEpsilon);
  NoisedBatch batch;
  batch.target = torch::zeros({2, 2});
  batch.timesteps = torch::tensor({0, 999}, torch::kLong);
  const auto pred = torch::tensor({{1.0f, 3.0f}, {2.0f, 0.0f}});  // per-sample mse 5 and 2
  const auto out = diffusion_loss(config, vp, pred, batch);
  CHECK(value_at(out.per_sample, 0) == doctest::Approx(5.0 * 5.0 / 1175.44031).epsilon(1e-4));
  CHECK(value_at(out.per_sample, 1) == doctest::Approx(2.0));
  CHECK(value_at(out.loss) == doctest::Approx((5.0 * 5.0 / 1175.44031 + 2.0) / 2).epsilon(1e-4));
  // Flow objectives ignore snr_gamma (SimpleTuner's flow-matching branch).
  batch.timesteps = torch::tensor({100.0f, 900.0f});
  CHECK(value_at(diffusion_loss(config, Objective(ObjectiveKind::Linear), pred, batch).loss) == doctest::Approx(3.5));
  auto plain = LossConfig::from_json({{"loss_type", "l2"}, {"snr_weight", 2.0}, {"snr_gamma", nullptr}});
  batch.timesteps = torch::tensor({0, 999}, torch::kLong);
  CHECK(value_at(diffusion_loss(plain, vp, pred, batch).loss) == doctest::Approx(7.0));
  auto huber = LossConfig::from_json({{"loss_type", "huber"}, {"huber_schedule", "constant"}, {"huber_c", 0.1}});
  batch.timesteps = torch::tensor({100.0f, 900.0f});
  const auto h = diffusion_loss(
      huber, Objective(ObjectiveKind::Linear), torch::tensor({{1.0f}, {0.0f}}),
      NoisedBatch{torch::Tensor(), torch::zeros({2, 1}), torch::Tensor(), batch.timesteps, torch::Tensor()});
  CHECK(value_at(h.loss) == doctest::Approx(0.1809975124 / 2).epsilon(1e-6));
  CHECK_THROWS_AS(LossConfig::from_json({{"loss_type", "l1"}}), repa::InputError);
  CHECK_THROWS_AS(LossConfig::from_json({{"huber_schedule", "cosine"}}), repa::InputError);
  CHECK(!LossConfig::from_json({{"snr_gamma", 0.0}}).snr_gamma.has_value());
}
