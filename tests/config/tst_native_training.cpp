// Which configs the studio's worker trains natively: the rule the worker stops with and the window
// disables Start by (core/config/native_training.h).
#include <doctest/doctest.h>

#include "core/config/native_training.h"
#include "core/config/presets.h"

#include <algorithm>

namespace repa {
bool test_contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace repa

using repa::config::native_training_blocker;

TEST_CASE("a family without its encoders is not trained natively, and the message says how to go on") {
  CHECK(native_training_blocker({{"model_family", "wan"}}) ==
        "model_family 'wan' is a text-conditioned family, which needs its text encoders; the studio's worker "
        "does not train it yet. Export the config and train it with SimpleTuner: repa-train export CONFIG "
        "--format simpletuner --out DIR (REPA / U-REPA settings included)");
  CHECK(repa::test_contains(native_training_blocker({{"model_family", "kolors"}}), "ChatGLM3-6B text encoder"));
  CHECK(repa::test_contains(native_training_blocker({{"model_family", "hidream"}}), "Llama-3.1-8B"));
  CHECK(native_training_blocker({{"model_family", "sdxl"}}).empty());
  CHECK(native_training_blocker({{"model_family", "sd1x"}}).empty());
  CHECK(native_training_blocker(nlohmann::json::object()).empty());
  CHECK(native_training_blocker({{"model_family", nullptr}}).empty());
  CHECK(native_training_blocker({{"model_family", ""}}).empty());
  CHECK(native_training_blocker({{"studio", {{"architecture", "unet2d_condition"}}}}).empty());  // trains here
}

TEST_CASE("the presets split into the ones trained here and the families still missing an encoder") {
  int native = 0, export_only = 0;
  const auto& families = repa::config::natively_trained_families();
  for (const auto& preset : repa::config::presets()) {
    const std::string family = preset.config.value("model_family", "");
    const bool trained = family.empty() || std::find(families.begin(), families.end(), family) != families.end();
    CHECK_MESSAGE(native_training_blocker(preset.config).empty() == trained, preset.name);
    (trained ? native : export_only) += 1;
  }
  CHECK(native >= 6);       // demo, the SiT paper setups, sd1x, sdxl
  CHECK(export_only >= 6);  // kolors, flux2, sana, lumina2, auraflow, hidream ...
}
