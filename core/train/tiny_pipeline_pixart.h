// A tiny PixArt-Σ pipeline folder with random weights in the real layout (model_index.json, transformer/, vae/,
// text_encoder/ (T5), tokenizer/ (spiece.model), scheduler/): what the PixArt family tests and benchmarks load
// through the same code as PixArt-alpha/PixArt-Sigma-XL-2-1024-MS.
#pragma once
#include <cstdint>
#include <string>

namespace repa::train {

struct TinyPixArtOptions {
  int64_t num_layers = 3;
  bool learned_sigma = true;           // out_channels 8 as the real checkpoints, else 4
  bool additional_conditions = false;  // use_additional_conditions (PixArt-α 1024); false as PixArt-Σ
  int64_t text_width = 16;             // the T5's d_model = caption_channels
};

// `spiece_model`: a T5 sentencepiece model (tests/fixtures/tokenizers/t5/spiece.model), copied as
// tokenizer/spiece.model. A 32 px image gives 16x16 latents (the VAE halves once, SDXL's scaling 0.13025) and
// 8x8 tokens. `seed` fixes every weight; the caller's random stream is left as it was.
void write_tiny_pixart_pipeline(const std::string& folder, const std::string& spiece_model, uint64_t seed,
                                const TinyPixArtOptions& options = {});

}  // namespace repa::train
