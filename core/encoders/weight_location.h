// Where an encoder's weights are found: an explicit path, else the studio's cache folder, else an error that
// names the missing file and the command that fetches it.
#pragma once
#include <string>

#include "core/encoders/encoder_catalog.h"

namespace repa::encoders {

// $XDG_CACHE_HOME/repa-studio/encoders, or ~/.cache/repa-studio/encoders when XDG_CACHE_HOME is unset or
// empty (the XDG base-directory rule).
std::string encoder_cache_root();

// <cache root>/<name>/model.safetensors.
std::string cached_weights_path(const EncoderSpec& encoder);

// The file to load for `encoder`: `explicit_path` when given (it must exist), else the cached file. Throws
// InputError naming the missing file and the exact `repa-train fetch NAME` command.
std::string resolve_encoder_weights(const EncoderSpec& encoder, const std::string& explicit_path = "");

}  // namespace repa::encoders
