#include "core/config/native_training.h"

#include <algorithm>
#include <map>

#include "core/config/registry.h"

namespace repa::config {

namespace {

const char* kExportHint =
    "Export the config and train it with SimpleTuner: repa-train export CONFIG --format simpletuner --out DIR "
    "(REPA / U-REPA settings included)";

// Families whose backbone the studio has but whose text encoder or autoencoder it does not.
const std::map<std::string, std::string>& missing_components() {
  static const std::map<std::string, std::string> table = {
      {"kolors", "the ChatGLM3-6B text encoder (Kolors shares SDXL's UNet)"},
      {"flux2", "the Mistral-Small-3.1 text encoder and the Flux.2 autoencoder (its transformer is built)"},
      {"sana", "the Gemma-2 text encoder and the DC-AE autoencoder (its transformer is built)"},
      {"lumina2", "the Gemma-2 text encoder (its transformer is built)"},
      {"auraflow", "the Pile-T5 text encoder (its transformer is built)"},
      {"hidream", "the Llama-3.1-8B text encoder (its transformer is built)"},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& natively_trained_families() {
  static const std::vector<std::string> families = {"sd1x", "sd2x", "sdxl", "pixart", "sd3", "flux", "chroma"};
  return families;
}

std::string missing_family_components(const std::string& family) {
  const auto it = missing_components().find(family);
  return it == missing_components().end() ? std::string() : it->second;
}

std::string native_training_blocker(const nlohmann::json& config) {
  const nlohmann::json value = config_value(config, "model_family");
  if (!value.is_string() || value.get<std::string>().empty()) return "";
  const std::string family = value.get<std::string>();
  const auto& native = natively_trained_families();
  if (std::find(native.begin(), native.end(), family) != native.end()) return "";
  if (const auto missing = missing_family_components(family); !missing.empty())
    return "model_family '" + family + "' needs " + missing + ", which the studio does not have yet. " + kExportHint;
  return "model_family '" + family +
         "' is a text-conditioned family, which needs its text encoders; the studio's worker does not train it "
         "yet. " + kExportHint;
}

}  // namespace repa::config
