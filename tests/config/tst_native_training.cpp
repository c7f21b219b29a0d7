// Which configs the studio's worker trains natively: the rule the worker stops with and the window
// disables Start by (core/config/native_training.h).
#include <doctest/doctest.h>

#include "core/config/native_training.h"
#include "core/config/presets.h"

using repa::config::native_training_blocker;

TEST_CASE("a SimpleTuner model family is not trained natively, and the message says how to go on") {
  CHECK(native_training_blocker({{"model_family", "sdxl"}}) ==
        "model_family 'sdxl' is a text-conditioned family, which needs its text encoders; the studio's worker "
        "does not train it yet. Export the config and train it with SimpleTuner: repa-train export CONFIG "
        "--format simpletuner --out DIR (REPA / U-REPA settings included)");
  CHECK(native_training_blocker(nlohmann::json::object()).empty());
  CHECK(native_training_blocker({{"model_family", nullptr}}).empty());
  CHECK(native_training_blocker({{"model_family", ""}}).empty());
  CHECK(native_training_blocker({{"studio", {{"architecture", "unet2d_condition"}}}}).empty());  // trains here
}

TEST_CASE("the presets split into the ones trained here and the SimpleTuner families") {
  int native = 0, export_only = 0;
  for (const auto& preset : repa::config::presets()) {
    const bool family = preset.config.contains("model_family");
    CHECK_MESSAGE(native_training_blocker(preset.config).empty() == !family, preset.name);
    (family ? export_only : native) += 1;
  }
  CHECK(native >= 4);        // demo and the SiT paper setups
  CHECK(export_only >= 10);  // sd1x … hidream
}
