// coefficient_schedule: SimpleTuner's CrepaScheduler.get_weight called once per row, in order, with the
// similarity of that row (NaN = none given). Compares the weight, the similarity EMA after the call (NaN
// while none was seen) and the latched cut-off.
#include <cmath>
#include <limits>
#include <optional>

#include "core/align/coefficient_schedule.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_coefficient_schedule(const Fixture& fixture) {
  const auto& config = fixture.config();
  std::string prefix = "crepa";
  for (const auto& item : config.items())
    if (item.key().rfind("urepa_", 0) == 0) prefix = "urepa";
  const int64_t max_train_steps = std::stoll(fixture.meta_or("max_train_steps", "0"));
  repa::align::CoefficientSchedule schedule(repa::align::ScheduleConfig::from_json(config, prefix, max_train_steps));

  const auto steps = fixture.tensor("in.step").to(torch::kInt64).contiguous();
  const auto similarity = fixture.tensor("in.similarity").to(torch::kFloat64).contiguous();
  const int64_t rows = steps.numel();
  auto weight = torch::empty({rows}, torch::kFloat64);
  auto ema = torch::empty({rows}, torch::kFloat64);
  auto latched = torch::empty({rows}, torch::kInt64);
  for (int64_t i = 0; i < rows; ++i) {
    const double s = similarity[i].item<double>();
    const std::optional<double> given = std::isnan(s) ? std::nullopt : std::optional<double>(s);
    weight[i] = schedule.weight(steps[i].item<int64_t>(), given);
    ema[i] = schedule.similarity_ema().value_or(std::numeric_limits<double>::quiet_NaN());
    latched[i] = schedule.cutoff() ? 1 : 0;
  }
  Comparison c(fixture.atol(), fixture.rtol());
  c.check("out.weight", weight, fixture.tensor("out.weight"));
  c.check("out.similarity_ema", ema, fixture.tensor("out.similarity_ema"));
  c.check("out.cutoff_latched", latched, fixture.tensor("out.cutoff_latched"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("coefficient_schedule", check_coefficient_schedule);
