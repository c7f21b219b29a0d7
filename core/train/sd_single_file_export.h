// The fine-tuned UNet of an SD 1.x / 2.x / XL run as one single file in the LDM/SGM names (A1111, ComfyUI): the
// checkpoint's model (or EMA) weights with the VAE and text encoders of the run's pipeline.
#pragma once
#include <string>

namespace repa::train {

struct SingleFileExport {
  std::string family, checkpoint, file;
  std::size_t tensors = 0;
};

// `source`: a checkpoint folder (checkpoints/checkpoint-N) or a run folder (its latest checkpoint). `ema` takes the
// EMA weights. InputError naming the checkpoint for a run of another family, a LoRA run (merge its adapter file with
// `repa-train merge` instead) or a checkpoint without EMA weights when `ema` is asked for.
SingleFileExport export_sd_single_file(const std::string& source, const std::string& out, bool ema);

}  // namespace repa::train
