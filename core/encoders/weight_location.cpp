#include "core/encoders/weight_location.h"

#include <cstdlib>
#include <filesystem>

#include "core/base/error.h"

namespace repa::encoders {

namespace fs = std::filesystem;

std::string encoder_cache_root() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  fs::path base;
  if (xdg && *xdg) {
    base = xdg;
  } else {
    const char* home = std::getenv("HOME");
    if (!home || !*home)
      throw InputError("cannot locate the encoder cache: neither XDG_CACHE_HOME nor HOME is set");
    base = fs::path(home) / ".cache";
  }
  return (base / "repa-studio" / "encoders").string();
}

std::string cached_weights_path(const EncoderSpec& encoder) {
  return (fs::path(encoder_cache_root()) / encoder.name / "model.safetensors").string();
}

std::string resolve_encoder_weights(const EncoderSpec& encoder, const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (!fs::is_regular_file(explicit_path))
      throw InputError("encoder weights file not found: " + explicit_path + " (studio.encoder_weights for " +
                       encoder.name + ")");
    return explicit_path;
  }
  const auto cached = cached_weights_path(encoder);
  if (!fs::is_regular_file(cached))
    throw InputError("encoder weights for " + encoder.name + " not found: " + cached +
                     " is missing; download them with `repa-train fetch " + encoder.name +
                     "` (from " + encoder.url + "), or set studio.encoder_weights to a model.safetensors");
  return cached;
}

}  // namespace repa::encoders
