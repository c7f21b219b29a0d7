// repa-train bench-lora: what one training step of a diffusers UNet2DConditionModel costs with full fine-tuning or
// with LoRA on the family's default targets: trainable parameters, AdamW state bytes (counted from the optimizer's
// own state tensors), resident memory after loading and at its peak (the kernel's VmHWM), and the step's time.
// One mode per process, since the peak resident size only grows: run it twice to compare.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "app/train_commands.h"
#include "core/adapters/lora_model.h"
#include "core/adapters/lora_targets.h"
#include "core/base/error.h"
#include "core/base/threads.h"
#include "core/models/diffusers_config.h"
#include "core/models/diffusers_layers.h"
#include "core/models/unet_2d_condition.h"
#include "core/train/fused_adamw.h"

namespace repa::app {
namespace {

// VmRSS / VmHWM of /proc/self/status in bytes (0 when unreadable).
double proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024.0;
  return 0;
}

void print_usage() {
  std::printf(
      "Usage: repa-train bench-lora --unet-config CONFIG.json [--mode full|lora] [--rank 16] [--family sd1x]\n"
      "                             [--batch 1] [--latent 32] [--tokens 77] [--steps 2] [--threads N] [--json]\n\n"
      "Builds the UNet of a diffusers config.json (random weights), then times --steps optimizer steps (eps MSE,\n"
      "backward, AdamW) with every weight trained (full) or LoRA of --rank on the family's default targets\n"
      "(alpha = rank) with the base frozen. Prints trainable parameters, AdamW state bytes, resident memory\n"
      "after building and at its peak, and the last step's seconds.\n");
}

}  // namespace

int bench_lora_command(const Args& args) {
  std::string config_path, mode = "lora", family = "sd1x";
  int64_t rank = 16, batch = 1, latent = 32, tokens = 77, steps = 2;
  int threads = 0;
  bool json = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    const bool has_value = i + 1 < args.size();
    auto integer = [&](const std::string& key) {
      try {
        return std::stoll(args[++i]);
      } catch (const std::exception&) {
        throw InputError(key + " needs a whole number, got '" + args[i] + "'");
      }
    };
    if (a == "--help" || a == "-h") {
      print_usage();
      return 0;
    } else if (a == "--unet-config" && has_value) {
      config_path = args[++i];
    } else if (a == "--mode" && has_value) {
      mode = args[++i];
    } else if (a == "--family" && has_value) {
      family = args[++i];
    } else if (a == "--rank" && has_value) {
      rank = integer(a);
    } else if (a == "--batch" && has_value) {
      batch = integer(a);
    } else if (a == "--latent" && has_value) {
      latent = integer(a);
    } else if (a == "--tokens" && has_value) {
      tokens = integer(a);
    } else if (a == "--steps" && has_value) {
      steps = integer(a);
    } else if (a == "--threads" && has_value) {
      threads = static_cast<int>(integer(a));
    } else if (a == "--json") {
      json = true;
    } else {
      throw InputError("unknown or incomplete option '" + a + "' (see repa-train bench-lora --help)");
    }
  }
  if (config_path.empty()) throw InputError("bench-lora needs --unet-config (a diffusers UNet config.json)");
  if (mode != "full" && mode != "lora") throw InputError("--mode is full or lora, got '" + mode + "'");
  if (rank < 1 || batch < 1 || latent < 8 || tokens < 1 || steps < 1)
    throw InputError("--rank, --batch, --tokens and --steps must be positive and --latent at least 8");
  threads = configure_torch_threads(threads);

  const auto config = models::UNet2DConditionConfig::from_json(models::diffusers::read_config_file(config_path));
  models::UNet2DConditionModel unet{nullptr};
  {
    // Built empty, then filled: every page is touched, as loading real weights touches them.
    models::diffusers::ParameterInitScope empty(models::diffusers::ParameterInit::Uninitialized);
    unet = models::UNet2DConditionModel(config);
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& p : unet->parameters()) p.normal_(0.0, 0.02);
  }
  int64_t base_parameters = 0;
  for (const auto& p : unet->parameters()) base_parameters += p.numel();

  std::unique_ptr<adapters::LoraModel> lora;
  std::vector<torch::Tensor> trainable;
  if (mode == "lora") {
    for (auto& p : unet->parameters()) p.set_requires_grad(false);
    adapters::LoraSettings settings;
    settings.rank = rank;
    settings.dropout = 0.0;
    lora = std::make_unique<adapters::LoraModel>(
        *unet, settings, adapters::resolve_targets(adapters::family_lora(family), nlohmann::json::object()));
    trainable = lora->parameters();
  } else {
    trainable = unet->parameters();
  }
  int64_t trainable_parameters = 0;
  for (const auto& p : trainable) trainable_parameters += p.numel();
  const double rss_built = proc_status_bytes("VmRSS");

  train::FusedAdamW optimizer(trainable, torch::optim::AdamWOptions(1e-5));
  unet->train();
  if (config.cross_attention_dim.empty()) throw InputError(config_path + ": the UNet has no cross_attention_dim");
  const auto context = torch::randn({batch, tokens, config.cross_attention_dim.front()});
  double seconds = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const auto start = std::chrono::steady_clock::now();
    const auto noise = torch::randn({batch, config.in_channels, latent, latent});
    const auto x_t = torch::randn_like(noise);
    const auto t = torch::randint(0, 1000, {batch}, torch::kLong);
    const auto out = unet->forward(x_t, t, context);
    auto loss = torch::mse_loss(out.sample, noise);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  int64_t state_bytes = 0;
  for (const auto& item : optimizer.state()) {
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*item.second);
    for (const auto& t : {s.exp_avg(), s.exp_avg_sq(), s.max_exp_avg_sq()})
      if (t.defined()) state_bytes += t.numel() * static_cast<int64_t>(t.element_size());
  }
  const double peak = proc_status_bytes("VmHWM");

  nlohmann::json report = {{"mode", mode},
                           {"config", config_path},
                           {"family", family},
                           {"rank", mode == "lora" ? nlohmann::json(rank) : nlohmann::json(nullptr)},
                           {"adapted_modules", lora ? static_cast<int64_t>(lora->adapted_modules().size()) : 0},
                           {"batch", batch},
                           {"latent", latent},
                           {"tokens", tokens},
                           {"threads", threads},
                           {"base_parameters", base_parameters},
                           {"trainable_parameters", trainable_parameters},
                           {"optimizer_state_bytes", state_bytes},
                           {"resident_after_build_bytes", rss_built},
                           {"peak_resident_bytes", peak},
                           {"step_seconds", seconds}};
  if (json) {
    std::printf("%s\n", report.dump().c_str());
    return 0;
  }
  std::printf(
      "bench-lora %s%s: %lld of %lld parameters train (%.2f %%), AdamW state %lld B, resident %.2f GB after "
      "building, peak %.2f GB, step %.1f s (batch %lld, %lldx%lld latents, %d threads)\n",
      mode.c_str(), mode == "lora" ? (" rank " + std::to_string(rank)).c_str() : "",
      static_cast<long long>(trainable_parameters), static_cast<long long>(base_parameters),
      100.0 * static_cast<double>(trainable_parameters) / static_cast<double>(base_parameters),
      static_cast<long long>(state_bytes), rss_built / 1e9, peak / 1e9, seconds, static_cast<long long>(batch),
      static_cast<long long>(latent), static_cast<long long>(latent), threads);
  return 0;
}

}  // namespace repa::app
