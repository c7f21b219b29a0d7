#include "app/train_commands.h"

namespace repa::app {

// Each command is defined in its own app/train_<name>.cpp.
int inspect_command(const Args& args);
int fetch_command(const Args& args);
int validate_command(const Args& args);
int export_command(const Args& args);
int options_command(const Args& args);
int schedule_command(const Args& args);
int run_command(const Args& args);
int cache_command(const Args& args);
int sample_command(const Args& args);
int bench_command(const Args& args);
int merge_command(const Args& args);
int bench_lora_command(const Args& args);
int single_file_command(const Args& args);

const std::vector<TrainCommand>& train_commands() {
  static const std::vector<TrainCommand> commands = {
      {"inspect", "list the tensors and metadata of a safetensors file or sharded index", inspect_command},
      {"fetch", "download an encoder's weights or a Hub model repository (OWNER/NAME) into the cache", fetch_command},
      {"validate", "check a run config (preset, file, --set) and report every problem", validate_command},
      {"export", "write a config for SimpleTuner (config.json + multidatabackend.json) or the studio", export_command},
      {"options", "list every option with type, default and range; --presets lists the presets", options_command},
      {"schedule", "print the planned REPA / U-REPA weight per step (CSV or table)", schedule_command},
      {"run", "train a SiT (REPA) or UNet (U-REPA) from a config; the studio's worker", run_command},
      {"cache", "fill the VAE-latent and teacher-token caches a run will read", cache_command},
      {"sample", "draw a sample grid from a saved checkpoint (EMA weights)", sample_command},
      {"bench", "time SiT (+REPA, cached or live teacher), UNet+U-REPA and DINOv2 steps; --json", bench_command},
      {"merge", "merge a LoRA file (diffusers or ComfyUI format) into base weights", merge_command},
      {"bench-lora", "parameters, AdamW state and peak memory of a UNet step, full or LoRA", bench_lora_command},
      {"single-file", "an SD run's UNet, VAE and text encoders as one A1111/ComfyUI file", single_file_command},
  };
  return commands;
}

}  // namespace repa::app
