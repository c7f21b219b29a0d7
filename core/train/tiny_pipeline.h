// Tiny diffusers pipeline folders with random weights, in the exact layout of the real ones (model_index.json,
// unet/ or transformer/, vae/, text_encoder*/, tokenizer*/, scheduler/): what the family tests, the benchmarks
// and the tiny demos load through the same code as a downloaded model. Nothing is downloaded; the tokenizer
// files are copied from `tokenizer_source` (a CLIP tokenizer/ folder: vocab.json, merges.txt).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace repa::train {

// sd1x, sd2x or sdxl at tiny widths (text 16–32 wide, UNet channels 16/32, a VAE with /2 downsampling and 4
// latent channels). `seed` fixes every weight. InputError for other families.
void write_tiny_sd_pipeline(const std::string& folder, const std::string& family, const std::string& tokenizer_source,
                            uint64_t seed);

// The shared pieces, for the other families' tiny pipelines.
void write_tiny_vae(const std::string& folder, int64_t latent_channels, uint64_t seed,
                    const nlohmann::json& extra_config = nlohmann::json::object());
void copy_clip_tokenizer(const std::string& source, const std::string& folder, const std::string& pad_token);
void write_json_file(const std::string& path, const nlohmann::json& value);
// A transformers CLIPTextConfig `width` wide, 3 layers, CLIP's vocabulary and special ids; with `projection`
// a CLIPTextModelWithProjection (projection_dim = width).
nlohmann::json tiny_clip_config(int64_t width, bool projection);

}  // namespace repa::train
