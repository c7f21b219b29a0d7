// LR schedules against values worked out by hand from diffusers' formulas.
#include <doctest/doctest.h>

#include "core/base/error.h"
#include "core/train/lr_schedule.h"

using repa::train::LrSchedule;

namespace {
LrSchedule make(const std::string& kind, int64_t warmup, int64_t total) {
  return LrSchedule::from_config(
      {{"lr_scheduler", kind}, {"learning_rate", 1.0}, {"lr_warmup_steps", warmup}, {"max_train_steps", total}});
}
}  // namespace

TEST_CASE("constant ignores the warm-up; constant_with_warmup ramps linearly from 0") {
  CHECK(make("constant", 10, 100).lr(0) == doctest::Approx(1.0));
  const auto s = make("constant_with_warmup", 10, 100);
  CHECK(s.lr(0) == doctest::Approx(0.0));
  CHECK(s.lr(5) == doctest::Approx(0.5));
  CHECK(s.lr(10) == doctest::Approx(1.0));
  CHECK(s.lr(99) == doctest::Approx(1.0));
}

TEST_CASE("linear decays to 0 at the last step after the warm-up") {
  const auto s = make("linear", 10, 110);
  CHECK(s.lr(5) == doctest::Approx(0.5));
  CHECK(s.lr(10) == doctest::Approx(1.0));
  CHECK(s.lr(60) == doctest::Approx(0.5));
  CHECK(s.lr(110) == doctest::Approx(0.0));
}

TEST_CASE("cosine is half a cosine wave; polynomial with power 2 ends at lr_end") {
  const auto c = make("cosine", 0, 100);
  CHECK(c.lr(0) == doctest::Approx(1.0));
  CHECK(c.lr(50) == doctest::Approx(0.5));
  CHECK(c.lr(25) == doctest::Approx(0.5 * (1 + std::cos(M_PI * 0.25))));
  auto p = LrSchedule::from_config({{"lr_scheduler", "polynomial"}, {"learning_rate", 1.0}, {"lr_warmup_steps", 0},
                                    {"max_train_steps", 100}, {"lr_power", 2.0}, {"lr_end", 0.1}});
  CHECK(p.lr(50) == doctest::Approx(0.9 * 0.25 + 0.1));
  CHECK(p.lr(100) == doctest::Approx(0.1));
  CHECK(p.lr(150) == doctest::Approx(0.1));
}

TEST_CASE("an unknown scheduler names the key and the choices") {
  CHECK_THROWS_WITH_AS(make("sine", 0, 10), doctest::Contains("lr_scheduler 'sine'"), repa::InputError);
}
