#include "core/train/memory_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/base/error.h"
#include "core/models/sit.h"
#include "core/train/config_values.h"

namespace repa::train {

namespace {

constexpr double kFloat = 4.0;

// A SiT block keeps about 14 token-width tensors for backward (norms, qkv, attention output, MLP in/out and
// GELU, residuals, modulations) and the attention probabilities (heads × T²), as the maths path stores them.
void estimate_sit(const nlohmann::json& config, int64_t input_size, int64_t channels, MemoryEstimate& out) {
  const auto sit = models::SiTConfig::from_json(config, input_size, channels, 1000);
  const double h = static_cast<double>(sit.hidden_size);
  const double grid = std::floor(static_cast<double>(input_size) / static_cast<double>(sit.patch_size));
  const double tokens = grid * grid;
  const double mlp = sit.mlp_ratio;
  const double per_block_params = 4 * h * h + 2 * mlp * h * h + 6 * h * h;
  out.parameters = static_cast<double>(sit.depth) * per_block_params + 2 * h * h + 1001 * h;
  const double per_block = 14 * tokens * h + 2 * static_cast<double>(sit.num_heads) * tokens * tokens;
  out.activations_bytes = static_cast<double>(out.batch) * kFloat * static_cast<double>(sit.depth) * per_block;
}

// A UNet level at resolution r with c channels keeps about 12 maps of c × r² per resnet layer.
void estimate_unet(const nlohmann::json& config, int64_t input_size, MemoryEstimate& out) {
  std::vector<double> widths = {32, 64};  // the built-in "tiny" configuration
  double layers = 1;
  const std::string name = text_or(studio_settings(config), "unet_config", "");
  if (!name.empty() && name != "tiny") widths = {320, 640, 1280, 1280}, layers = 2;  // a diffusers UNet's shape
  double params = 0, per_sample = 0, side = static_cast<double>(input_size);
  for (std::size_t level = 0; level < widths.size(); ++level) {
    const double c = widths[level];
    params += layers * 2 * 9 * c * c * 2;  // down and up resnets, two 3x3 convolutions each
    per_sample += layers * 2 * 12 * c * side * side;
    side = std::max(1.0, std::floor(side / 2));
  }
  out.parameters = params;
  out.activations_bytes = static_cast<double>(out.batch) * kFloat * per_sample;
}

}  // namespace

std::string format_bytes(double bytes) {
  static const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 6) bytes /= 1024.0, ++unit;
  char text[48];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

std::string MemoryEstimate::describe() const {
  return "about " + format_bytes(total()) + " (weights, gradients and optimizer state " + format_bytes(weights_bytes) +
         " for " + std::to_string(static_cast<long long>(parameters)) + " parameters; activations " +
         format_bytes(activations_bytes) + " and images " + format_bytes(data_bytes) + " for train_batch_size " +
         std::to_string(batch) + ")";
}

MemoryEstimate estimate_training_memory(const nlohmann::json& config) {
  MemoryEstimate out;
  const auto& studio = studio_settings(config);
  out.batch = std::max<int64_t>(1, integer_or(config, "train_batch_size", 16));
  const int64_t resolution = std::max<int64_t>(1, integer_or(config, "resolution", 256));
  // A family's backbone (Flux, SDXL, ...) is not the studio's SiT or UNet: no estimate rather than a wrong one.
  if (!text_or(config, "model_family", "").empty()) {
    out.applies = false;
    return out;
  }
  const bool latent = !text_or(studio, "vae_path", "").empty();
  const int64_t input_size = latent ? std::max<int64_t>(1, resolution / 8) : resolution;
  const int64_t channels = latent ? 4 : 3;
  if (text_or(studio, "architecture", "sit") == "sit")
    estimate_sit(config, input_size, channels, out);
  else
    estimate_unet(config, input_size, out);
  // fp32 weights, their gradients and AdamW's two moments; an EMA copy when use_ema.
  out.weights_bytes = out.parameters * kFloat * (4 + (flag_or(config, "use_ema", false) ? 1 : 0));
  // The decoded image, its crop and the batch tensor (and their flips) per sample.
  const double pixels = 3.0 * static_cast<double>(resolution) * static_cast<double>(resolution);
  out.data_bytes = static_cast<double>(out.batch) * pixels * kFloat * 3;
  return out;
}

void check_training_memory(const MemoryEstimate& estimate, double available_bytes, double total_bytes,
                           const std::string& where) {
  if (!estimate.applies || available_bytes <= 0 || estimate.total() <= available_bytes) return;
  throw InputError("train_batch_size " + std::to_string(estimate.batch) + ": one training step needs " +
                   estimate.describe() + ", but " + where + " has " + format_bytes(available_bytes) + " available (" +
                   format_bytes(total_bytes) +
                   " in all). Lower train_batch_size or resolution, or set "
                   "studio.skip_memory_check=true to start anyway");
}

}  // namespace repa::train
