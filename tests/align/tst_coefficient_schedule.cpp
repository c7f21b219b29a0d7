#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/align/coefficient_schedule.h"
#include "core/base/error.h"

using nlohmann::json;
using repa::align::CoefficientSchedule;
using repa::align::ScheduleConfig;
using repa::align::ScheduleShape;
using repa::align::ThresholdMode;

namespace {

CoefficientSchedule schedule_of(const json& config, int64_t max_train_steps = 0, const std::string& prefix = "crepa") {
  return CoefficientSchedule(ScheduleConfig::from_json(config, prefix, max_train_steps));
}

}  // namespace

TEST_CASE("decay shapes give the hand-worked weights") {
  const json base = {{"crepa_lambda", 1.0}, {"crepa_lambda_end", 0.0}, {"crepa_decay_steps", 10}};
  SUBCASE("linear: halfway is 0.5, the end and beyond are lambda_end") {
    auto c = base;
    c["crepa_scheduler"] = "linear";
    const auto s = schedule_of(c);
    CHECK(s.planned_weight(0) == doctest::Approx(1.0));
    CHECK(s.planned_weight(5) == doctest::Approx(0.5));
    CHECK(s.planned_weight(10) == doctest::Approx(0.0));
    CHECK(s.planned_weight(25) == doctest::Approx(0.0));
  }
  SUBCASE("cosine: (1 + cos(pi p)) / 2") {
    auto c = base;
    c["crepa_scheduler"] = "cosine";
    c["crepa_lambda_end"] = 0.2;
    const auto s = schedule_of(c);
    CHECK(s.planned_weight(0) == doctest::Approx(1.0));
    CHECK(s.planned_weight(5) == doctest::Approx(0.6));                             // 0.2 + 0.8 * 0.5
    CHECK(s.planned_weight(2) == doctest::Approx(0.2 + 0.8 * 0.9045084971874737));  // (1+cos(0.2 pi))/2
  }
  SUBCASE("polynomial with power 2: (1 - p)^2") {
    auto c = base;
    c["crepa_scheduler"] = "polynomial";
    c["crepa_power"] = 2.0;
    const auto s = schedule_of(c);
    CHECK(s.planned_weight(5) == doctest::Approx(0.25));
    CHECK(s.planned_weight(8) == doctest::Approx(0.04));
  }
  SUBCASE("constant ignores decay settings") {
    const auto s = schedule_of(base);
    CHECK(s.planned_weight(0) == doctest::Approx(1.0));
    CHECK(s.planned_weight(50) == doctest::Approx(1.0));
  }
}

TEST_CASE("warm-up ramps from 0 at step 0, and decay counts from its end") {
  const auto s = schedule_of({{"crepa_lambda", 0.8},
                              {"crepa_warmup_steps", 4},
                              {"crepa_scheduler", "linear"},
                              {"crepa_decay_steps", 12},
                              {"crepa_lambda_end", 0.0}});
  CHECK(s.planned_weight(0) == 0.0);
  CHECK(s.planned_weight(1) == doctest::Approx(0.2));
  CHECK(s.planned_weight(2) == doctest::Approx(0.4));
  CHECK(s.planned_weight(4) == doctest::Approx(0.8));
  CHECK(s.planned_weight(8) == doctest::Approx(0.4));  // (8-4)/(12-4) = half way
  CHECK(s.planned_weight(12) == doctest::Approx(0.0));
}

TEST_CASE("decay_steps 0 decays until max_train_steps") {
  const json c = {{"crepa_lambda", 1.0}, {"crepa_scheduler", "linear"}, {"crepa_decay_steps", 0}};
  CHECK(schedule_of(c, 20).planned_weight(10) == doctest::Approx(0.5));
  CHECK(schedule_of(c, 40).planned_weight(10) == doctest::Approx(0.75));
  CHECK(ScheduleConfig::from_json(c, "crepa", 40).decay_end_step == 40);
}

TEST_CASE("the step cut-off gives 0 from cutoff_step on and latches in permanent mode") {
  auto s = schedule_of({{"crepa_lambda", 0.5}, {"crepa_cutoff_step", 5}});
  CHECK(s.weight(4) == doctest::Approx(0.5));
  CHECK_FALSE(s.cutoff());
  CHECK(s.weight(5) == 0.0);
  CHECK(s.cutoff());
  CHECK(s.weight(3) == 0.0);  // latched: an earlier step does not bring it back
  CHECK(s.planned_weight(4) == doctest::Approx(0.5));
  CHECK(s.planned_weight(5) == 0.0);
}

TEST_CASE("the similarity EMA threshold: permanent latches, recoverable recovers") {
  const json base = {{"crepa_lambda", 0.5}, {"crepa_similarity_threshold", 0.5}, {"crepa_similarity_ema_decay", 0.5}};
  for (const char* mode : {"permanent", "recoverable"}) {
    CAPTURE(mode);
    auto c = base;
    c["crepa_threshold_mode"] = mode;
    auto s = schedule_of(c);
    CHECK_FALSE(s.similarity_ema().has_value());
    CHECK(s.weight(0, 0.4) == doctest::Approx(0.5));  // EMA starts at the first similarity: 0.4
    CHECK(*s.similarity_ema() == doctest::Approx(0.4));
    CHECK(s.weight(1, 0.8) == 0.0);  // 0.5*0.4 + 0.5*0.8 = 0.6 >= 0.5
    CHECK(*s.similarity_ema() == doctest::Approx(0.6));
    CHECK(s.cutoff() == (std::string(mode) == "permanent"));
    CHECK(s.weight(2) == 0.0);             // no similarity given: the EMA stays 0.6
    const double next = s.weight(3, 0.0);  // EMA 0.3 < 0.5
    CHECK(*s.similarity_ema() == doctest::Approx(0.3));
    if (std::string(mode) == "permanent") {
      CHECK(next == 0.0);
      CHECK(s.cutoff());
    } else {
      CHECK(next == doctest::Approx(0.5));
      CHECK_FALSE(s.cutoff());
    }
  }
}

TEST_CASE("planned_weight changes no state") {
  auto s = schedule_of({{"crepa_lambda", 0.5}, {"crepa_similarity_threshold", 0.1}});
  for (int step = 0; step < 5; ++step) s.planned_weight(step);
  CHECK_FALSE(s.similarity_ema().has_value());
  CHECK_FALSE(s.cutoff());
}

TEST_CASE("state saved mid-run and restored into a fresh schedule reproduces the same sequence") {
  const json c = {{"crepa_lambda", 0.7},
                  {"crepa_scheduler", "cosine"},
                  {"crepa_warmup_steps", 3},
                  {"crepa_decay_steps", 30},
                  {"crepa_lambda_end", 0.1},
                  {"crepa_similarity_threshold", 0.55},
                  {"crepa_similarity_ema_decay", 0.8},
                  {"crepa_threshold_mode", "recoverable"}};
  const auto similarity = [](int step) { return 0.3 + 0.03 * step - (step % 4 == 0 ? 0.2 : 0.0); };
  auto original = schedule_of(c);
  for (int step = 0; step < 10; ++step) original.weight(step, similarity(step));
  const json saved = json::parse(original.state().dump());  // through text, as a checkpoint stores it
  std::vector<double> expected;
  std::vector<bool> expected_cutoff;
  for (int step = 10; step < 25; ++step) {
    expected.push_back(original.weight(step, similarity(step)));
    expected_cutoff.push_back(original.cutoff());
  }
  auto restored = schedule_of(c);
  restored.load_state(saved);
  int cut = 0;
  for (int step = 10; step < 25; ++step) {
    CHECK(restored.weight(step, similarity(step)) == expected[step - 10]);
    CHECK(restored.cutoff() == expected_cutoff[step - 10]);
    cut += expected[step - 10] == 0.0;
  }
  CHECK(cut > 0);   // the threshold was crossed in the resumed part...
  CHECK(cut < 15);  // ...and recovered from
  CHECK(*restored.similarity_ema() == *original.similarity_ema());

  // A fresh schedule (no restore) diverges, so the check above is not vacuous.
  auto fresh = schedule_of(c);
  bool differs = false;
  for (int step = 10; step < 25; ++step) differs |= fresh.weight(step, similarity(step)) != expected[step - 10];
  CHECK(differs);
}

TEST_CASE("config reading follows SimpleTuner's conventions") {
  SUBCASE("missing keys take SimpleTuner's defaults") {
    const auto c = ScheduleConfig::from_json(json::object(), "urepa", 100);
    CHECK(c.shape == ScheduleShape::Constant);
    CHECK(c.lambda == 0.5);
    CHECK(c.decay_end_step == 100);
    CHECK(c.power == 1.0);
    CHECK(c.similarity_ema_decay == 0.99);
    CHECK_FALSE(c.similarity_threshold.has_value());
    CHECK(c.threshold_mode == ThresholdMode::Permanent);
  }
  SUBCASE("the prefix selects the keys; strings parse as numbers; power 0 means 1") {
    const auto c = ScheduleConfig::from_json({{"urepa_lambda", "1e-1"},
                                              {"urepa_scheduler", "Polynomial"},
                                              {"urepa_power", 0},
                                              {"urepa_similarity_threshold", "0.25"},
                                              {"crepa_lambda", 0.9},
                                              {"urepa_threshold_mode", "RECOVERABLE"}},
                                             "urepa", 0);
    CHECK(c.lambda == doctest::Approx(0.1));
    CHECK(c.shape == ScheduleShape::Polynomial);
    CHECK(c.power == 1.0);
    CHECK(*c.similarity_threshold == doctest::Approx(0.25));
    CHECK(c.threshold_mode == ThresholdMode::Recoverable);
  }
  SUBCASE("a null lambda is SimpleTuner's default 0.5 (its loader drops nulls), an explicit 0 stays 0") {
    CHECK(ScheduleConfig::from_json({{"crepa_lambda", nullptr}}, "crepa", 0).lambda == 0.5);
    CHECK(ScheduleConfig::from_json({{"urepa_lambda", nullptr}}, "urepa", 0).lambda == 0.5);
    CHECK(ScheduleConfig::from_json({{"crepa_lambda", 0}}, "crepa", 0).lambda == 0.0);
  }
  SUBCASE("null threshold means none") {
    CHECK_FALSE(ScheduleConfig::from_json({{"crepa_similarity_threshold", nullptr}}, "crepa", 0)
                    .similarity_threshold.has_value());
  }
  SUBCASE("bad values name the key") {
    CHECK_THROWS_WITH_AS(ScheduleConfig::from_json({{"crepa_scheduler", "exponential"}}, "crepa", 0),
                         doctest::Contains("crepa_scheduler"), repa::InputError);
    CHECK_THROWS_WITH_AS(ScheduleConfig::from_json({{"crepa_lambda", "half"}}, "crepa", 0),
                         doctest::Contains("crepa_lambda"), repa::InputError);
    CHECK_THROWS_WITH_AS(ScheduleConfig::from_json({{"urepa_threshold_mode", "sometimes"}}, "urepa", 0),
                         doctest::Contains("urepa_threshold_mode"), repa::InputError);
  }
  SUBCASE("a malformed state is refused") {
    auto s = schedule_of(json::object());
    CHECK_THROWS_AS(s.load_state({{"similarity_ema", "x"}}), repa::InputError);
  }
}
