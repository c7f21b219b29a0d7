// Data parallelism: a coefficient schedule given a mean over ranks folds that mean, not the local similarity,
// into its EMA, and so cuts off where one process with the whole batch would.
#include <doctest/doctest.h>

#include "core/align/coefficient_schedule.h"

using namespace repa::align;

TEST_CASE("the similarity EMA and the threshold cut-off follow the mean over ranks") {
  ScheduleConfig config;
  config.lambda = 0.5;
  config.similarity_threshold = 0.6;
  config.similarity_ema_decay = 0.5;
  // This rank sees 0.4 and 0.5; the other rank saw 0.8 and 0.9: the means are 0.6 and 0.7.
  CoefficientSchedule local(config), shared(config);
  const double other[] = {0.8, 0.9};
  int call = 0;
  shared.set_similarity_mean([&](double mine) { return (mine + other[call++]) / 2.0; });
  CHECK(local.weight(0, 0.4) == 0.5);
  CHECK(shared.weight(0, 0.4) == 0.0);  // EMA 0.6 reaches the threshold
  CHECK(*local.similarity_ema() == doctest::Approx(0.4));
  CHECK(*shared.similarity_ema() == doctest::Approx(0.6));
  local.weight(1, 0.5);
  shared.weight(1, 0.5);
  CHECK(*local.similarity_ema() == doctest::Approx(0.45));
  CHECK(*shared.similarity_ema() == doctest::Approx(0.65));
  CHECK(shared.cutoff());
  CHECK_FALSE(local.cutoff());
  CHECK(call == 2);
  CHECK(shared.planned_weight(2) == 0.5);  // planning never asks the ranks
}
