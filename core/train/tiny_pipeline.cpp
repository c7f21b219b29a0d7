#include "core/train/tiny_pipeline.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/base/generator_scope.h"
#include "core/io/safetensors.h"
#include "core/models/autoencoder_kl.h"
#include "core/models/unet_2d_condition.h"
#include "core/text/random_text_encoder.h"
#include "core/train/ema.h"

namespace repa::train {

namespace fs = std::filesystem;

nlohmann::json tiny_clip_config(int64_t width, bool projection) {
  nlohmann::json c = {{"vocab_size", 49408},        {"hidden_size", width},     {"intermediate_size", 2 * width},
                      {"num_hidden_layers", 3},     {"num_attention_heads", 2}, {"max_position_embeddings", 77},
                      {"hidden_act", "quick_gelu"}, {"bos_token_id", 49406},    {"eos_token_id", 49407}};
  c["architectures"] = {projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"};
  if (projection) c["projection_dim"] = width;
  return c;
}

void write_json_file(const std::string& path, const nlohmann::json& value) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  if (!out) throw Error("cannot write '" + path + "'");
}

void copy_clip_tokenizer(const std::string& source, const std::string& folder, const std::string& pad_token) {
  fs::create_directories(folder);
  for (const char* name : {"vocab.json", "merges.txt"}) {
    if (!fs::exists(fs::path(source) / name))
      throw InputError("tokenizer source '" + source + "' has no " + name);
    fs::copy_file(fs::path(source) / name, fs::path(folder) / name, fs::copy_options::overwrite_existing);
  }
  write_json_file((fs::path(folder) / "special_tokens_map.json").string(),
                  {{"bos_token", "<|startoftext|>"}, {"eos_token", "<|endoftext|>"},
                   {"unk_token", "<|endoftext|>"}, {"pad_token", pad_token}});
  write_json_file((fs::path(folder) / "tokenizer_config.json").string(), {{"model_max_length", 77}});
}

void write_tiny_vae(const std::string& folder, int64_t latent_channels, uint64_t seed, const nlohmann::json& extra) {
  nlohmann::json config = {{"_class_name", "AutoencoderKL"},
                           {"in_channels", 3},
                           {"out_channels", 3},
                           {"latent_channels", latent_channels},
                           {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D"}},
                           {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D"}},
                           {"block_out_channels", {8, 16}},
                           {"layers_per_block", 1},
                           {"norm_num_groups", 4},
                           {"scaling_factor", 0.18215}};
  for (const auto& [key, value] : extra.items()) config[key] = value;
  write_json_file((fs::path(folder) / "config.json").string(), config);
  GeneratorScope scope(seed);
  models::AutoencoderKL vae(models::AutoencoderKLConfig::from_json(config));
  io::save_safetensors((fs::path(folder) / "diffusion_pytorch_model.safetensors").string(), module_state(*vae));
}

void write_tiny_sd_pipeline(const std::string& folder, const std::string& family, const std::string& tokenizer_source,
                            uint64_t seed) {
  if (family != "sd1x" && family != "sd2x" && family != "sdxl")
    throw InputError("no tiny SD pipeline for model_family '" + family + "' (sd1x, sd2x, sdxl)");
  const bool xl = family == "sdxl";
  const fs::path root(folder);
  fs::create_directories(root);
  nlohmann::json index = {{"_class_name", xl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline"},
                          {"unet", {"diffusers", "UNet2DConditionModel"}},
                          {"vae", {"diffusers", "AutoencoderKL"}},
                          {"text_encoder", {"transformers", "CLIPTextModel"}},
                          {"tokenizer", {"transformers", "CLIPTokenizer"}},
                          {"scheduler", {"diffusers", family == "sd2x" ? "EulerDiscreteScheduler" : "DDPMScheduler"}}};
  if (xl) {
    index["text_encoder_2"] = {"transformers", "CLIPTextModelWithProjection"};
    index["tokenizer_2"] = {"transformers", "CLIPTokenizer"};
  }
  write_json_file((root / "model_index.json").string(), index);
  write_json_file((root / "scheduler" / "scheduler_config.json").string(),
                  {{"num_train_timesteps", 1000},
                   {"beta_start", 0.00085},
                   {"beta_end", 0.012},
                   {"beta_schedule", "scaled_linear"},
                   {"prediction_type", family == "sd2x" ? "v_prediction" : "epsilon"}});
  // SD 2.x's and SDXL's second tokenizer pad with "!", the others with the end token.
  copy_clip_tokenizer(tokenizer_source, (root / "tokenizer").string(),
                      family == "sd2x" ? "!" : "<|endoftext|>");
  int64_t text_width = 32;
  text::write_random_clip_text_encoder((root / "text_encoder").string(), tiny_clip_config(xl ? 16 : 32, false), seed + 1);
  nlohmann::json unet = {{"_class_name", "UNet2DConditionModel"},
                         {"sample_size", 16},
                         {"in_channels", 4},
                         {"out_channels", 4},
                         {"down_block_types", {"DownBlock2D", "CrossAttnDownBlock2D"}},
                         {"up_block_types", {"CrossAttnUpBlock2D", "UpBlock2D"}},
                         {"block_out_channels", {16, 32}},
                         {"layers_per_block", 1},
                         {"attention_head_dim", xl ? nlohmann::json({2, 4}) : nlohmann::json(4)},
                         {"norm_num_groups", 8}};
  if (xl) {
    copy_clip_tokenizer(tokenizer_source, (root / "tokenizer_2").string(), "!");
    text::write_random_clip_text_encoder((root / "text_encoder_2").string(), tiny_clip_config(32, true), seed + 2);
    text_width = 16 + 32;  // CLIP-L's and bigG's penultimate states side by side
    unet["addition_embed_type"] = "text_time";
    unet["addition_time_embed_dim"] = 8;
    unet["projection_class_embeddings_input_dim"] = 32 + 6 * 8;  // pooled bigG + six time ids
    unet["transformer_layers_per_block"] = {1, 1};
    unet["use_linear_projection"] = true;
  }
  if (family == "sd2x") {
    unet["use_linear_projection"] = true;
    unet["attention_head_dim"] = {2, 4};
  }
  unet["cross_attention_dim"] = text_width;
  write_json_file((root / "unet" / "config.json").string(), unet);
  {
    GeneratorScope scope(seed + 3);
    models::UNet2DConditionModel model(models::UNet2DConditionConfig::from_json(unet));
    io::save_safetensors((root / "unet" / "diffusion_pytorch_model.safetensors").string(), module_state(*model));
  }
  write_tiny_vae((root / "vae").string(), 4, seed + 4);
}

}  // namespace repa::train
