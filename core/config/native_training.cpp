#include "core/config/native_training.h"

#include "core/config/registry.h"

namespace repa::config {

std::string native_training_blocker(const nlohmann::json& config) {
  const nlohmann::json family = config_value(config, "model_family");
  if (!family.is_string() || family.get<std::string>().empty()) return "";
  return "model_family '" + family.get<std::string>() +
         "' is a text-conditioned family, which needs its text encoders; the studio's worker does not train it "
         "yet. Export the config and train it with SimpleTuner: repa-train export CONFIG --format simpletuner "
         "--out DIR (REPA / U-REPA settings included)";
}

}  // namespace repa::config
