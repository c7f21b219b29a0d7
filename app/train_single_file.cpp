// repa-train single-file --from RUN|CHECKPOINT --out FILE [--ema]: an SD 1.x / 2.x / XL run's fine-tuned UNet with
// its pipeline's VAE and text encoders as one .safetensors in the LDM/SGM names A1111 and ComfyUI load.
#include <cstdio>
#include <string>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/train/sd_single_file_export.h"

namespace repa::app {

int single_file_command(const Args& args) {
  std::string from, out;
  bool ema = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "Usage: repa-train single-file --from RUN_OR_CHECKPOINT --out FILE.safetensors [--ema]\n\n"
          "Writes the UNet of an sd1x / sd2x / sdxl run's checkpoint (a run folder: its latest) with the VAE and\n"
          "text encoders of the run's pipeline as one checkpoint in the original LDM/SGM names\n"
          "(model.diffusion_model.*, first_stage_model.*, cond_stage_model.* / conditioner.embedders.*), the\n"
          "layout A1111 and ComfyUI load. --ema takes the EMA weights. LoRA runs: use repa-train merge.\n");
      return 0;
    }
    if (a == "--from" && i + 1 < args.size()) {
      from = args[++i];
    } else if (a == "--out" && i + 1 < args.size()) {
      out = args[++i];
    } else if (a == "--ema") {
      ema = true;
    } else {
      throw InputError("unknown or incomplete option '" + a + "' (see repa-train single-file --help)");
    }
  }
  if (from.empty() || out.empty()) throw InputError("single-file needs --from and --out");
  const auto written = train::export_sd_single_file(from, out, ema);
  std::printf("wrote the %s LDM single file %s (%zu tensors) from %s\n", written.family.c_str(), written.file.c_str(),
              written.tensors, written.checkpoint.c_str());
  return 0;
}

}  // namespace repa::app
