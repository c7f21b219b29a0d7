#include "core/train/tiny_pipeline_flow.h"

#include <torch/torch.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/base/generator_scope.h"
#include "core/io/safetensors.h"
#include "core/models/chroma_transformer.h"
#include "core/models/flux_transformer.h"
#include "core/models/sd3_transformer.h"
#include "core/text/random_text_encoder.h"
#include "core/train/ema.h"
#include "core/train/tiny_pipeline.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {

nlohmann::json t5_config(int64_t width) {
  return {{"architectures", {"T5EncoderModel"}},
          {"vocab_size", 32128},
          {"d_model", width},
          {"d_kv", 8},
          {"d_ff", 2 * width},
          {"num_layers", 2},
          {"num_heads", 2},
          {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16},
          {"feed_forward_proj", "gated-gelu"}};
}

void write_t5(const fs::path& root, const char* encoder, const char* tokenizer, int64_t width,
              const TinyTokenizers& tokenizers, uint64_t seed) {
  if (!fs::exists(tokenizers.t5_spiece)) throw InputError("T5 tokenizer '" + tokenizers.t5_spiece + "' does not exist");
  fs::create_directories(root / tokenizer);
  fs::copy_file(tokenizers.t5_spiece, root / tokenizer / "spiece.model", fs::copy_options::overwrite_existing);
  text::write_random_t5_encoder((root / encoder).string(), t5_config(width), seed);
}

// diffusers' FlowMatchEulerDiscreteScheduler as the families ship it: SD3 a static shift of 3, Flux and Chroma
// the resolution-dependent shift.
nlohmann::json flow_scheduler(bool dynamic) {
  nlohmann::json c = {{"_class_name", "FlowMatchEulerDiscreteScheduler"},
                      {"num_train_timesteps", 1000},
                      {"shift", dynamic ? 1.0 : 3.0}};
  if (dynamic) {
    c["use_dynamic_shifting"] = true;
    c["base_shift"] = 0.5;
    c["max_shift"] = 1.15;
    c["base_image_seq_len"] = 256;
    c["max_image_seq_len"] = 4096;
  }
  return c;
}

template <typename Model, typename Config>
void write_transformer(const fs::path& folder, const nlohmann::json& config, uint64_t seed) {
  write_json_file((folder / "config.json").string(), config);
  GeneratorScope scope(seed);
  Model model(Config::from_json(config));
  io::save_safetensors((folder / "diffusion_pytorch_model.safetensors").string(), module_state(*model));
}

}  // namespace

void write_tiny_sd3_pipeline(const std::string& folder, const TinyTokenizers& tokenizers, uint64_t seed, bool sd35) {
  const fs::path root(folder);
  fs::create_directories(root);
  write_json_file((root / "model_index.json").string(),
                  {{"_class_name", "StableDiffusion3Pipeline"},
                   {"transformer", {"diffusers", "SD3Transformer2DModel"}},
                   {"vae", {"diffusers", "AutoencoderKL"}},
                   {"text_encoder", {"transformers", "CLIPTextModelWithProjection"}},
                   {"tokenizer", {"transformers", "CLIPTokenizer"}},
                   {"text_encoder_2", {"transformers", "CLIPTextModelWithProjection"}},
                   {"tokenizer_2", {"transformers", "CLIPTokenizer"}},
                   {"text_encoder_3", {"transformers", "T5EncoderModel"}},
                   {"tokenizer_3", {"transformers", "T5TokenizerFast"}},
                   {"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}}});
  write_json_file((root / "scheduler" / "scheduler_config.json").string(), flow_scheduler(false));
  // SD3's CLIP-G tokenizer pads with "!", CLIP-L's with the end token.
  copy_clip_tokenizer(tokenizers.clip_folder, (root / "tokenizer").string(), "<|endoftext|>");
  copy_clip_tokenizer(tokenizers.clip_folder, (root / "tokenizer_2").string(), "!");
  text::write_random_clip_text_encoder((root / "text_encoder").string(), tiny_clip_config(16, true), seed + 1);
  text::write_random_clip_text_encoder((root / "text_encoder_2").string(), tiny_clip_config(32, true), seed + 2);
  write_t5(root, "text_encoder_3", "tokenizer_3", 64, tokenizers, seed + 3);
  nlohmann::json transformer = {{"_class_name", "SD3Transformer2DModel"},
                                {"sample_size", 16},
                                {"patch_size", 2},
                                {"in_channels", 16},
                                {"num_layers", 2},
                                {"attention_head_dim", 8},
                                {"num_attention_heads", 2},
                                {"joint_attention_dim", 64},
                                {"caption_projection_dim", 16},
                                {"pooled_projection_dim", 16 + 32},
                                {"out_channels", 16},
                                {"pos_embed_max_size", 16}};
  if (sd35) {
    transformer["dual_attention_layers"] = {0};
    transformer["qk_norm"] = "rms_norm";
  }
  write_transformer<models::SD3Transformer, models::SD3TransformerConfig>(root / "transformer", transformer, seed + 4);
  write_tiny_vae((root / "vae").string(), 16, seed + 5, {{"scaling_factor", 1.5305}, {"shift_factor", 0.0609}});
}

void write_tiny_flux_pipeline(const std::string& folder, const TinyTokenizers& tokenizers, bool dev, uint64_t seed) {
  const fs::path root(folder);
  fs::create_directories(root);
  write_json_file((root / "model_index.json").string(),
                  {{"_class_name", "FluxPipeline"},
                   {"transformer", {"diffusers", "FluxTransformer2DModel"}},
                   {"vae", {"diffusers", "AutoencoderKL"}},
                   {"text_encoder", {"transformers", "CLIPTextModel"}},
                   {"tokenizer", {"transformers", "CLIPTokenizer"}},
                   {"text_encoder_2", {"transformers", "T5EncoderModel"}},
                   {"tokenizer_2", {"transformers", "T5TokenizerFast"}},
                   {"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}}});
  write_json_file((root / "scheduler" / "scheduler_config.json").string(), flow_scheduler(true));
  copy_clip_tokenizer(tokenizers.clip_folder, (root / "tokenizer").string(), "<|endoftext|>");
  text::write_random_clip_text_encoder((root / "text_encoder").string(), tiny_clip_config(16, false), seed + 1);
  write_t5(root, "text_encoder_2", "tokenizer_2", 32, tokenizers, seed + 2);
  write_transformer<models::FluxTransformer, models::FluxTransformerConfig>(root / "transformer",
                                                                            {{"_class_name", "FluxTransformer2DModel"},
                                                                             {"patch_size", 1},
                                                                             {"in_channels", 64},
                                                                             {"num_layers", 1},
                                                                             {"num_single_layers", 2},
                                                                             {"attention_head_dim", 8},
                                                                             {"num_attention_heads", 2},
                                                                             {"joint_attention_dim", 32},
                                                                             {"pooled_projection_dim", 16},
                                                                             {"guidance_embeds", dev},
                                                                             {"axes_dims_rope", {2, 2, 4}}},
                                                                            seed + 3);
  write_tiny_vae((root / "vae").string(), 16, seed + 4, {{"scaling_factor", 0.3611}, {"shift_factor", 0.1159}});
}

void write_tiny_chroma_pipeline(const std::string& folder, const TinyTokenizers& tokenizers, uint64_t seed) {
  const fs::path root(folder);
  fs::create_directories(root);
  write_json_file((root / "model_index.json").string(),
                  {{"_class_name", "ChromaPipeline"},
                   {"transformer", {"diffusers", "ChromaTransformer2DModel"}},
                   {"vae", {"diffusers", "AutoencoderKL"}},
                   {"text_encoder", {"transformers", "T5EncoderModel"}},
                   {"tokenizer", {"transformers", "T5TokenizerFast"}},
                   {"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}}});
  write_json_file((root / "scheduler" / "scheduler_config.json").string(), flow_scheduler(true));
  write_t5(root, "text_encoder", "tokenizer", 32, tokenizers, seed + 1);
  write_transformer<models::ChromaTransformer, models::ChromaTransformerConfig>(
      root / "transformer",
      {{"_class_name", "ChromaTransformer2DModel"},
       {"patch_size", 1},
       {"in_channels", 64},
       {"num_layers", 1},
       {"num_single_layers", 2},
       {"attention_head_dim", 8},
       {"num_attention_heads", 2},
       {"joint_attention_dim", 32},
       {"axes_dims_rope", {2, 2, 4}},
       {"approximator_num_channels", 8},
       {"approximator_hidden_dim", 16},
       {"approximator_layers", 1}},
      seed + 2);
  write_tiny_vae((root / "vae").string(), 16, seed + 3, {{"scaling_factor", 0.3611}, {"shift_factor", 0.1159}});
}

}  // namespace repa::train
