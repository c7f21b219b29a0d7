#include "core/train/tiny_pipeline_pixart.h"

#include <torch/torch.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/pixart_transformer.h"
#include "core/text/random_text_encoder.h"
#include "core/train/ema.h"
#include "core/train/tiny_pipeline.h"

namespace repa::train {

namespace fs = std::filesystem;

void write_tiny_pixart_pipeline(const std::string& folder, const std::string& spiece_model, uint64_t seed,
                                const TinyPixArtOptions& options) {
  if (!fs::is_regular_file(spiece_model))
    throw InputError("T5 tokenizer model '" + spiece_model + "' is not a file (a sentencepiece spiece.model)");
  const fs::path root(folder);
  fs::create_directories(root / "tokenizer");
  write_json_file((root / "model_index.json").string(), {{"_class_name", "PixArtSigmaPipeline"},
                                                         {"transformer", {"diffusers", "PixArtTransformer2DModel"}},
                                                         {"vae", {"diffusers", "AutoencoderKL"}},
                                                         {"text_encoder", {"transformers", "T5EncoderModel"}},
                                                         {"tokenizer", {"transformers", "T5Tokenizer"}},
                                                         {"scheduler", {"diffusers", "DPMSolverMultistepScheduler"}}});
  // PixArt-Σ's scheduler: linear betas 1e-4 .. 0.02, epsilon.
  write_json_file((root / "scheduler" / "scheduler_config.json").string(),
                  {{"_class_name", "DPMSolverMultistepScheduler"},
                   {"num_train_timesteps", 1000},
                   {"beta_start", 0.0001},
                   {"beta_end", 0.02},
                   {"beta_schedule", "linear"},
                   {"prediction_type", "epsilon"}});
  fs::copy_file(spiece_model, root / "tokenizer" / "spiece.model", fs::copy_options::overwrite_existing);
  write_json_file((root / "tokenizer" / "tokenizer_config.json").string(), {{"model_max_length", 300}});
  text::write_random_t5_encoder((root / "text_encoder").string(),
                                {{"vocab_size", 32128},
                                 {"d_model", options.text_width},
                                 {"d_kv", 4},
                                 {"d_ff", 24},
                                 {"num_layers", 2},
                                 {"num_heads", 2},
                                 {"relative_attention_num_buckets", 8},
                                 {"relative_attention_max_distance", 16},
                                 {"feed_forward_proj", "gated-gelu"}},
                                seed + 1);
  const nlohmann::json transformer = {{"_class_name", "PixArtTransformer2DModel"},
                                      {"num_attention_heads", 2},
                                      {"attention_head_dim", 12},
                                      {"in_channels", 4},
                                      {"out_channels", options.learned_sigma ? 8 : 4},
                                      {"num_layers", options.num_layers},
                                      {"cross_attention_dim", 24},
                                      {"caption_channels", options.text_width},
                                      {"attention_bias", true},
                                      {"sample_size", 16},
                                      {"patch_size", 2},
                                      {"activation_fn", "gelu-approximate"},
                                      {"norm_type", "ada_norm_single"},
                                      {"num_embeds_ada_norm", 1000},
                                      {"norm_elementwise_affine", false},
                                      {"norm_eps", 1e-6},
                                      {"use_additional_conditions", options.additional_conditions}};
  write_json_file((root / "transformer" / "config.json").string(), transformer);
  {
    // Restores the global generator afterwards, so writing a pipeline never changes a caller's random stream.
    const auto state = torch::randint(0, 1 << 30, {1}).item<int64_t>();
    torch::manual_seed(seed + 3);
    models::PixArtTransformer model(models::PixArtTransformerConfig::from_diffusers(transformer));
    io::save_safetensors((root / "transformer" / "diffusion_pytorch_model.safetensors").string(), module_state(*model));
    torch::manual_seed(static_cast<uint64_t>(state));
  }
  write_tiny_vae((root / "vae").string(), 4, seed + 4, {{"scaling_factor", 0.13025}});
}

}  // namespace repa::train
