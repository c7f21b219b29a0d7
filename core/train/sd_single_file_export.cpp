#include "core/train/sd_single_file_export.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/config/family_pipeline.h"
#include "core/models/sd_pipeline_folder.h"
#include "core/train/checkpoint.h"

namespace repa::train {

namespace fs = std::filesystem;

SingleFileExport export_sd_single_file(const std::string& source, const std::string& out, bool ema) {
  SingleFileExport result;
  result.checkpoint = source;
  if (!fs::exists(fs::path(source) / "trainer_state.json")) {
    const auto latest = latest_checkpoint((fs::path(source) / "checkpoints").string());
    if (!latest) throw InputError("'" + source + "' is neither a checkpoint folder nor a run folder with checkpoints");
    result.checkpoint = *latest;
  }
  const auto state = read_checkpoint_state(result.checkpoint);
  const auto& config = state.at("config");
  result.family = config.value("model_family", std::string());
  if (result.family != "sd1x" && result.family != "sd2x" && result.family != "sdxl")
    throw InputError("'" + result.checkpoint + "' is a checkpoint of model_family '" + result.family +
                     "'; an LDM single file is written for sd1x, sd2x and sdxl runs");
  const auto part = ema ? "ema" : "model";
  if (!fs::exists(fs::path(result.checkpoint) / (std::string(part) + ".safetensors"))) {
    if (state.contains("lora"))
      throw InputError("'" + result.checkpoint +
                       "' is a LoRA run's checkpoint (adapters only): merge its adapter "
                       "file into the base with `repa-train merge --base <pipeline>/unet --lora <file> --out <dir>`");
    throw InputError("'" + result.checkpoint + "' has no " + part + ".safetensors" +
                     (ema ? " (the run trained without EMA)" : ""));
  }
  const auto file = open_checkpoint_part(result.checkpoint, part);
  models::TensorMap unet;
  for (const auto& name : file.names()) unet[name] = file.tensor(name, /*view=*/true);
  const auto pipeline = config::resolve_family_pipeline(config);
  result.tensors = models::write_sd_unet_single_file(pipeline.denoiser_folder, result.family, unet, out);
  result.file = out;
  return result;
}

}  // namespace repa::train
