#include "core/encoders/teacher.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/encoders/dinov2_weights.h"
#include "core/encoders/encoder_catalog.h"
#include "core/encoders/torchscript_teacher.h"
#include "core/encoders/weight_location.h"

namespace repa::encoders {
namespace {

// Reads a key that may be missing or null (unset options) with a fallback.
template <typename T>
T value_or(const nlohmann::json& object, const char* key, T fallback) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return fallback;
  try {
    return object[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError(std::string("config key '") + key + "' has the wrong type: " + object[key].dump());
  }
}

}  // namespace

TeacherOptions TeacherOptions::from_config(const nlohmann::json& config) {
  TeacherOptions o;
  // SimpleTuner prefers crepa_model and falls back to the legacy crepa_encoder.
  auto name = value_or<std::string>(config, "crepa_model", "");
  if (name.empty()) name = value_or<std::string>(config, "crepa_encoder", "");
  o.encoder = name;
  const auto image_size = value_or<int64_t>(config, "crepa_encoder_image_size", 0);
  o.image_size = image_size > 0 ? image_size : 518;  // SimpleTuner: `int(... or 518)`
  if (config.contains("resolution") && config["resolution"].is_number())
    o.resolution = static_cast<int64_t>(config["resolution"].get<double>());
  o.seed = value_or<uint64_t>(config, "seed", 0);
  const nlohmann::json studio = config.contains("studio") ? config["studio"] : nlohmann::json::object();
  o.weights = value_or<std::string>(studio, "encoder_weights", "");
  o.random_init = value_or<bool>(studio, "encoder_random_init", false);
  o.preprocessing = parse_preprocessing(value_or<std::string>(studio, "encoder_preprocessing", "simpletuner"));
  const auto device = value_or<std::string>(studio, "device", "auto");
  if (device == "cuda" || (device == "auto" && torch::cuda::is_available())) {
    if (!torch::cuda::is_available()) throw InputError("studio.device is \"cuda\" but no CUDA device is available");
    o.device = torch::Device(torch::kCUDA);
    const auto precision = value_or<std::string>(config, "mixed_precision", "no");
    if (precision == "bf16") o.half_precision = torch::kBFloat16;
    if (precision == "fp16") o.half_precision = torch::kHalf;
  } else if (device != "cpu" && device != "auto") {
    throw InputError("studio.device: expected \"auto\", \"cpu\" or \"cuda\", got \"" + device + "\"");
  }
  return o;
}

Dinov2Teacher::Dinov2Teacher(Dinov2 model, const TeacherOptions& options, std::string description)
    : model_(std::move(model)), options_(options), description_(std::move(description)) {
  if (options_.preprocessing == Preprocessing::Repa) {
    const auto grid = repa_encoder_input_size(options_.resolution) / model_->config().patch_size;
    model_->resample_position_table(grid, grid);
  }
  if (options_.device.is_cuda() && options_.half_precision) dtype_ = *options_.half_precision;
  model_->to(options_.device, dtype_);
  model_->freeze();
}

TeacherTokens Dinov2Teacher::encode(const torch::Tensor& pixels) {
  torch::NoGradGuard no_grad;
  auto input = pixels.to(options_.device, torch::kFloat32);
  input = options_.preprocessing == Preprocessing::Repa ? preprocess_repa(input)
                                                        : preprocess_simpletuner(input, options_.image_size);
  const auto features = model_->forward(input.to(dtype_));
  return {features.patch_tokens.to(torch::kFloat32), features.cls_token.to(torch::kFloat32)};
}

namespace {

std::string recipe_identity(const TeacherOptions& o) {
  return o.preprocessing == Preprocessing::Repa ? "repa@" + std::to_string(repa_encoder_input_size(o.resolution))
                                                : "simpletuner@" + std::to_string(o.image_size);
}

// Weights by path, size and modification time: a re-downloaded or replaced file changes the identity.
std::string file_identity(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  return path + ":" + std::to_string(ec ? 0 : size) + ":" + std::to_string(ec ? 0 : mtime);
}

}  // namespace

bool is_torchscript_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

std::unique_ptr<Teacher> make_teacher(const TeacherOptions& options) {
  std::unique_ptr<Teacher> teacher;
  if (!options.weights.empty() && is_torchscript_file(options.weights)) {
    teacher = std::make_unique<TorchScriptTeacher>(options.weights, options);
    teacher->identity_ = "torchscript|" + file_identity(options.weights) + "|" + recipe_identity(options);
    return teacher;
  }
  const auto& spec = find_encoder(options.encoder);
  const auto config = Dinov2Config::for_size(spec.size, spec.registers);
  if (options.random_init) {
    auto model = random_dinov2(config, options.seed);
    teacher = std::make_unique<Dinov2Teacher>(model, options,
                                              spec.name + " (random init, seed " + std::to_string(options.seed) + ")");
    teacher->identity_ = spec.name + "|random:" + std::to_string(options.seed) + "|" + recipe_identity(options);
    return teacher;
  }
  const auto path = resolve_encoder_weights(spec, options.weights);
  Dinov2LoadOptions load;
  load.expected = config;
  auto model = load_dinov2_file(path, load);
  teacher = std::make_unique<Dinov2Teacher>(model, options, spec.name + " from " + path);
  teacher->identity_ = spec.name + "|" + file_identity(path) + "|" + recipe_identity(options);
  return teacher;
}

}  // namespace repa::encoders
