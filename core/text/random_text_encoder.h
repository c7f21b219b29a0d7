// A randomly initialised CLIP text encoder or T5 encoder written as a Hugging Face folder (config.json +
// model.safetensors): what smoke tests, the tiny text-to-image runs and the benchmarks load through the same path
// as real weights.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace repa::text {

// `config` is a transformers CLIPTextConfig (architectures ["CLIPTextModelWithProjection"] adds the
// projection). The weights follow torch's default initialisation under `seed`; the global RNG is restored.
void write_random_clip_text_encoder(const std::string& folder, const nlohmann::json& config, uint64_t seed);

// The same for a T5EncoderModel (`config` a transformers T5Config).
void write_random_t5_encoder(const std::string& folder, const nlohmann::json& config, uint64_t seed);

}  // namespace repa::text
