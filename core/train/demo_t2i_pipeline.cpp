#include "core/train/demo_t2i_pipeline.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/demo_t2i_source.h"
#include "core/io/safetensors.h"
#include "core/models/autoencoder_kl.h"
#include "core/text/clip_tokenizer.h"
#include "core/text/demo_clip_vocabulary.h"
#include "core/text/random_text_encoder.h"
#include "core/train/ema.h"
#include "core/train/tiny_pipeline.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStampName = "demo_t2i_pipeline.json";

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_bounded(text.str(), path.string());
}

// A random VAE turns every colour grey, so the samples could not show what the UNet learnt. The demo's VAE is
// instead set by hand to pass pixels through: the encoder averages each 2x2 block of R, G, B into latent
// channels 0-2 (channel 3 stays 0), the decoder repeats them back. Residual branches and attention outputs are
// zero, so every block is the identity; the one-group norms before conv_out see each colour as +x and -x beside
// two constant channels ±K, which fixes their mean at 0 and their spread near K whatever the image, so
// scale K/sqrt(channels/2) gives x back; SiLU(20 + x) - SiLU(20 - x) is 2x to 1e-7.
void write_pixel_vae(const fs::path& folder, uint64_t seed) {
  write_tiny_vae(folder.string(), 4, seed, {{"norm_num_groups", 1}, {"scaling_factor", 1.0}});
  constexpr double kConstant = 100.0, kLift = 20.0;
  auto vae = models::load_autoencoder_kl(folder.string());
  torch::NoGradGuard no_grad;
  auto params = vae->named_parameters();
  for (auto& item : params) item.value().zero_();
  const auto at = [&](const std::string& name) { return params[name]; };
  const auto split_colours = [&](const std::string& conv) {  // channel 2c = colour c, 2c+1 = its negative
    for (int64_t c = 0; c < 3; ++c) {
      at(conv + ".weight")[2 * c][c][1][1] = 1.0;
      at(conv + ".weight")[2 * c + 1][c][1][1] = -1.0;
    }
    at(conv + ".bias")[6] = kConstant;
    at(conv + ".bias")[7] = -kConstant;
  };
  const auto unsplit = [&](const std::string& norm, const std::string& conv, int64_t channels) {
    for (int64_t o = 0; o < 6; ++o) {
      at(norm + ".weight")[o] = kConstant / std::sqrt(channels / 2.0);
      at(norm + ".bias")[o] = kLift;
    }
    for (int64_t c = 0; c < 3; ++c) {
      at(conv + ".weight")[c][2 * c][1][1] = 0.5;
      at(conv + ".weight")[c][2 * c + 1][1][1] = -0.5;
    }
  };
  const auto pass_through = [&](const std::string& conv, int64_t channels, int64_t kernel_centre) {
    for (int64_t o = 0; o < channels; ++o) at(conv + ".weight")[o][o][kernel_centre][kernel_centre] = 1.0;
  };
  split_colours("encoder.conv_in");
  at("encoder.down_blocks.0.downsamplers.0.conv.weight").slice(2, 0, 2).slice(3, 0, 2) +=
      0.25 * torch::eye(8).view({8, 8, 1, 1});  // stride 2, padded right and below: taps 0-1 are the 2x2 block
  pass_through("encoder.down_blocks.1.resnets.0.conv_shortcut", 8, 0);
  unsplit("encoder.conv_norm_out", "encoder.conv_out", 16);
  at("encoder.conv_out.bias").slice(0, 4, 8).fill_(-30.0);  // log-variance: a posterior without spread
  pass_through("quant_conv", 8, 0);
  pass_through("post_quant_conv", 4, 0);
  split_colours("decoder.conv_in");
  pass_through("decoder.up_blocks.0.upsamplers.0.conv", 16, 1);
  pass_through("decoder.up_blocks.1.resnets.0.conv_shortcut", 8, 0);
  unsplit("decoder.conv_norm_out", "decoder.conv_out", 8);
  io::save_safetensors((folder / "diffusion_pytorch_model.safetensors").string(), module_state(*vae));
}

}  // namespace

void write_demo_t2i_pipeline(const std::string& folder, const std::string& family, uint64_t seed) {
  const fs::path root(folder);
  const fs::path vocabulary = root / "demo-tokenizer-source";
  text::write_demo_clip_tokenizer(vocabulary.string());
  write_tiny_sd_pipeline(folder, family, vocabulary.string(), seed);
  fs::remove_all(vocabulary);
  // The tiny pipeline's encoders are sized for CLIP's own vocabulary; the demo's is a few hundred tokens.
  const auto tokenizer = text::ClipTokenizer::from_folder((root / "tokenizer").string());
  uint64_t encoder_seed = seed + 1;
  for (const char* encoder : {"text_encoder", "text_encoder_2"}) {
    const fs::path config_path = root / encoder / "config.json";
    if (!fs::exists(config_path)) continue;
    auto config = read_json(config_path);
    config["vocab_size"] = static_cast<int64_t>(tokenizer.vocab_size());
    config["bos_token_id"] = tokenizer.bos_id();
    config["eos_token_id"] = tokenizer.eos_id();
    text::write_random_clip_text_encoder((root / encoder).string(), config, encoder_seed++);
  }
  write_pixel_vae(root / "vae", seed + 4);
}

std::string ensure_demo_t2i_pipeline(const nlohmann::json& config) {
  if (!config::uses_demo_t2i_pipeline(config)) return "";
  const auto family_it = config.find("model_family");
  const std::string family =
      family_it != config.end() && family_it->is_string() ? family_it->get<std::string>() : std::string("sd1x");
  if (family != "sd1x" && family != "sd2x" && family != "sdxl")
    throw InputError(std::string("pretrained_model_name_or_path '") + config::kDemoT2iPipelineName +
                     "' makes a tiny SD pipeline (model_family sd1x, sd2x or sdxl), not one for model_family '" +
                     family + "'");
  const std::string folder = config::demo_t2i_pipeline_folder(config);
  const nlohmann::json stamp = {
      {"generator", "repa-studio demo-t2i pipeline"}, {"version", 2}, {"family", family}, {"seed", 0}};
  const fs::path stamp_path = fs::path(folder) / kStampName;
  if (fs::exists(stamp_path)) {
    nlohmann::json existing;
    try {
      existing = read_json(stamp_path);
    } catch (const InputError&) {
      existing = nullptr;  // a torn stamp: the folder is made again
    }
    if (existing == stamp) return folder;
    fs::remove_all(folder);  // an older generation of ours
  } else if (fs::exists(folder) && !fs::is_empty(folder)) {
    throw InputError("'" + folder + "' holds files that are not the generated demo-t2i pipeline; move them to use " +
                     config::kDemoT2iPipelineName);
  }
  write_demo_t2i_pipeline(folder, family, 0);
  write_json_file(stamp_path.string(), stamp);
  return folder;
}

}  // namespace repa::train
