// The text-to-image demo's pipeline folder, made on first use: pretrained_model_name_or_path "@demo-t2i" names a
// tiny random pipeline of the run's SD family (sd1x by default) with the demo's generated CLIP tokenizer, written
// under <output_dir>/demo-t2i-pipeline and reused while its stamp (family, seed) matches.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace repa::train {

// Writes a tiny `family` pipeline (write_tiny_sd_pipeline) whose tokenizer is the demo vocabulary and whose text
// encoders' vocab_size and bos/eos ids match it; its VAE passes pixels through (latent channels 0-2 are the 2x2
// averaged R, G, B), so the samples show the colours the UNet learnt.
void write_demo_t2i_pipeline(const std::string& folder, const std::string& family, uint64_t seed);

// For a config with "@demo-t2i": makes the folder unless it already holds the same generation; returns the folder.
// "" for any other config. InputError for a family other than sd1x, sd2x, sdxl.
std::string ensure_demo_t2i_pipeline(const nlohmann::json& config);

}  // namespace repa::train
