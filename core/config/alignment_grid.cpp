#include "core/config/alignment_grid.h"

#include <algorithm>
#include <fstream>

namespace repa::config {
namespace {

std::optional<int64_t> positive_integer(const nlohmann::json& value) {
  if (!value.is_number()) return std::nullopt;
  const double number = value.get<double>();
  if (number < 1) return std::nullopt;
  return static_cast<int64_t>(number);
}

std::string text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : "";
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  auto json = nlohmann::json::parse(in, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  return json;
}

// 2^(levels − 1): diffusers' VAEs and UNets halve the resolution in every block but the last.
std::optional<int64_t> halvings(const nlohmann::json& config, const char* list_key) {
  const auto it = config.find(list_key);
  if (it == config.end() || !it->is_array() || it->empty()) return std::nullopt;
  return int64_t{1} << (it->size() - 1);
}

}  // namespace

std::optional<AlignmentGrids> alignment_grids(const nlohmann::json& config) {
  const bool crepa = config_value(config, "crepa_enabled") == true;
  const bool urepa = config_value(config, "urepa_enabled") == true;
  if (!crepa && !urepa) return std::nullopt;
  if (config_value(config, "studio.teacher_tokens") == "cls") return std::nullopt;  // one token, no grid
  if (!text(config_value(config, "model_family")).empty()) return std::nullopt;
  const std::string weights = text(config_value(config, "studio.encoder_weights"));
  if (!weights.empty() && !ends_with(weights, ".safetensors")) return std::nullopt;  // a TorchScript teacher
  const auto resolution = positive_integer(config_value(config, "resolution"));
  if (!resolution) return std::nullopt;

  AlignmentGrids grids;
  const std::string prefix = crepa ? "crepa" : "urepa";
  grids.size_key = prefix + "_encoder_image_size";
  grids.pooled = crepa && config_value(config, "crepa_spatial_align") == false;
  std::string encoder = text(config_value(config, crepa ? "crepa_model" : "urepa_model"));
  if (encoder.empty() && crepa) encoder = text(config_value(config, "crepa_encoder"));
  if (encoder.empty()) encoder = "dinov2_vitg14";

  // The teacher: the encoder's input side over its /14 patches.
  int64_t encoder_size = 0;
  if (config_value(config, "studio.encoder_preprocessing") == "repa") {
    if (*resolution < 256) return std::nullopt;  // REPA's recipe refuses it; the run says so
    grids.repa_preprocessing = true;
    encoder_size = 224 * (*resolution / 256);
  } else {
    const auto size = positive_integer(config_value(config, grids.size_key));
    if (!size) return std::nullopt;
    encoder_size = *size;
  }
  grids.teacher = encoder_size / kDinov2PatchSize;
  grids.teacher_origin = encoder + " at " + std::to_string(encoder_size) + " px / " + std::to_string(kDinov2PatchSize) +
                         (grids.repa_preprocessing ? ", REPA preprocessing: 224 px per 256 px" : "");

  // The backbone: pixels, over the VAE's downsampling, over the SiT's patches or the UNet's down path.
  int64_t input = *resolution;
  grids.backbone_origin = std::to_string(*resolution) + " px";
  const std::string vae_path = text(config_value(config, "studio.vae_path"));
  grids.pixel_space = vae_path.empty();
  if (!vae_path.empty()) {
    const auto vae = read_json(vae_path + "/config.json");
    const auto factor = vae ? halvings(*vae, "block_out_channels") : std::nullopt;
    input /= factor.value_or(8);
    grids.backbone_origin += " / " + std::to_string(factor.value_or(8)) + (factor ? " (VAE)" : " (VAE, assumed)");
  }
  const std::string architecture = text(config_value(config, "studio.architecture"));
  if (architecture == "sit") {
    const auto patch = positive_integer(config_value(config, "studio.patch_size"));
    if (!patch) return std::nullopt;
    grids.backbone = input / *patch;
    grids.backbone_origin += " / patch " + std::to_string(*patch);
  } else {
    const std::string unet = text(config_value(config, "studio.unet_config"));
    std::optional<int64_t> factor;
    if (unet.empty() || unet == "tiny") {
      factor = 2;  // the built-in tiny UNet: two down blocks
    } else if (const auto file = read_json(unet)) {
      factor = halvings(*file, "down_block_types");
    }
    if (!factor) return std::nullopt;
    grids.backbone = input / *factor;
    grids.backbone_origin += " / " + std::to_string(*factor) + " (UNet mid block)";
  }
  if (grids.teacher < 1 || grids.backbone < 1) return std::nullopt;
  return grids;
}

std::vector<Problem> check_alignment_grid(const nlohmann::json& config) {
  const auto grids = alignment_grids(config);
  if (!grids || grids->teacher == grids->backbone) return {};
  const auto side = [](int64_t n) { return std::to_string(n) + "×" + std::to_string(n); };
  const int64_t target = std::min(grids->teacher, grids->backbone);
  std::string message = "the teacher's token grid is " + side(grids->teacher) + " (" + grids->teacher_origin +
                        ") but the backbone's is " + side(grids->backbone) + " (" + grids->backbone_origin + "): ";
  if (grids->pooled)
    message += "with crepa_spatial_align false both sides are mean-pooled to one token. ";
  else
    message += "the aligner resamples the " + std::string(grids->teacher > target ? "teacher's" : "backbone's") +
               " tokens to " + side(target) + " (bilinear, no antialias). ";
  const std::string size = std::to_string(grids->matching_encoder_size());
  if (grids->repa_preprocessing)
    message +=
        "studio.encoder_preprocessing \"simpletuner\" with " + grids->size_key + " " + size + " makes them equal";
  else
    message += grids->size_key + " " + size + " (" + std::to_string(grids->backbone) + " × " +
               std::to_string(kDinov2PatchSize) + ") makes them equal";
  if (grids->pixel_space && grids->backbone == grids->teacher * 8)
    message += "; or train in an SD VAE's latent space (studio.vae_path): its /8 latents give the teacher's grid";
  return {{grids->repa_preprocessing ? "studio.encoder_preprocessing" : grids->size_key, message, Severity::Warning}};
}

}  // namespace repa::config
