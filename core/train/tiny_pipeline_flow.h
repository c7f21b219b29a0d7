// Tiny random SD3, Flux (dev / schnell) and Chroma pipeline folders in the exact layout of the real ones
// (model_index.json, transformer/, vae/ with 16 latent channels and the family's scaling and shift factors,
// text_encoder*/, tokenizer*/, scheduler/ of FlowMatchEulerDiscreteScheduler): what the flow-family tests load
// through the same code as a downloaded model. Tokenizers are copied from a CLIP tokenizer folder (vocab.json,
// merges.txt) and a T5 spiece.model; every weight is fixed by `seed`.
#pragma once
#include <cstdint>
#include <string>

namespace repa::train {

struct TinyTokenizers {
  std::string clip_folder;  // vocab.json + merges.txt
  std::string t5_spiece;    // spiece.model
};

// CLIP-L (16 wide) and CLIP-G (32 wide) with projections, T5 64 wide; SD3Transformer2DModel with 2 joint blocks
// (`sd35`: SD3.5's dual attention in block 0 and RMS qk-norm).
void write_tiny_sd3_pipeline(const std::string& folder, const TinyTokenizers& tokenizers, uint64_t seed,
                             bool sd35 = false);

// CLIP-L (16 wide, pooled), T5 32 wide; FluxTransformer2DModel with 1 double and 2 single blocks; `dev` gives it
// the guidance embedding (guidance_embeds), schnell has none.
void write_tiny_flux_pipeline(const std::string& folder, const TinyTokenizers& tokenizers, bool dev, uint64_t seed);

// T5 32 wide; ChromaTransformer2DModel with 1 double and 2 single blocks and a one-layer approximator.
void write_tiny_chroma_pipeline(const std::string& folder, const TinyTokenizers& tokenizers, uint64_t seed);

}  // namespace repa::train
