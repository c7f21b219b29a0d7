// repa-train cache CONFIG [--preset P] [--set k=v]: fills the VAE-latent, teacher-token and (text-conditioned
// runs) text-embedding caches a run of this config will read, so the run starts training at once.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/train/caption_conditioning.h"
#include "core/train/config_values.h"
#include "core/train/family_conditioning.h"
#include "core/train/training_data.h"

namespace repa::app {

nlohmann::json resolve_run_config(const Args& args, std::string* events_mode, std::vector<std::string>* warnings);

int cache_command(const Args& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::printf(
          "Usage: repa-train cache [--config] CONFIG.json [--preset NAME] [--set key=value]...\n\n"
          "Decodes the dataset, lists corrupt files, and fills the caches of VAE posteriors, teacher\n"
          "tokens and, for text-conditioned runs, text embeddings of the captions (beside the dataset,\n"
          "or studio.cache_dir) that 'repa-train run' reads. A caption already cached is not encoded\n"
          "again; the text encoders are loaded only when one is missing.\n");
      return 0;
    }
  std::string events_mode;
  auto config = resolve_run_config(args, &events_mode, nullptr);
  // A model_family run caches with the settings its pipeline folder gives (VAE, text conditioning), as the run.
  const auto pipeline = train::prepare_family_run(config);
  auto report = [](const std::string& level, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", level.c_str(), message.c_str());
  };
  const torch::Device device =
      torch::cuda::is_available() && train::text_or(train::studio_settings(config), "device", "auto") != "cpu"
          ? torch::Device(torch::kCUDA)
          : torch::Device(torch::kCPU);
  train::LatentSpace latent_space(config, device);
  std::unique_ptr<encoders::Teacher> teacher;
  if (train::flag_or(config, "urepa_enabled", false)) {
    config["crepa_model"] = train::text_or(config, "urepa_model", "dinov2_vitg14");
    config["crepa_encoder_image_size"] = train::integer_or(config, "urepa_encoder_image_size", 518);
  }
  if (train::flag_or(config, "crepa_enabled", false) || train::flag_or(config, "urepa_enabled", false)) {
    auto options = encoders::TeacherOptions::from_config(config);
    options.device = device;
    teacher = encoders::make_teacher(options);
  }
  const auto data = train::prepare_training_data(config, latent_space, teacher.get(), report);
  std::printf("%zu images ready (%zu corrupt skipped); caches under %s\n", data.folder.images.size(),
              data.folder.corrupt.size(), data.cache_root.c_str());
  if (pipeline || train::text_or(train::studio_settings(config), "architecture", "sit") == "unet2d_condition") {
    const auto start = std::chrono::steady_clock::now();
    auto bar = [&start](int64_t done, int64_t total) {
      const int width = 30, filled = static_cast<int>(width * done / std::max<int64_t>(1, total));
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\rtext embeddings [%s%s] %lld/%lld  %.1f prompts/s%s", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), seconds > 0 ? done / seconds : 0.0, done == total ? "\n" : "");
    };
    auto options = train::CaptionConditioningOptions::from_config(config, data.backend ? &*data.backend : nullptr);
    if (pipeline) options.extra_prompts = train::family_extra_prompts(config, data::read_captions(data.folder, options.captions));
    const train::CaptionConditioning captions(std::move(options), data, report, bar);
    const auto& filled = captions.fill_report();
    std::printf("text embeddings: %lld prompts, %lld reused, %lld encoded, in %s\n",
                static_cast<long long>(filled.prompts), static_cast<long long>(filled.reused),
                static_cast<long long>(filled.computed), captions.cache_folder().c_str());
  }
  return 0;
}

}  // namespace repa::app
