// What a full (non-LoRA) family run leaves at its end, as SimpleTuner's `pipeline.save_pretrained(output_dir/
// "pipeline")` does: a diffusers pipeline folder that from_pretrained loads — the base pipeline's unchanged
// components (hard links where the file system allows, copies otherwise) around the trained denoiser — and, for
// SD 1.x / 2.x / XL, the same model as one LDM/SGM single file beside it (A1111, ComfyUI).
#pragma once
#include <cstddef>
#include <string>

#include "core/config/family_pipeline.h"
#include "core/io/safetensors.h"

namespace repa::train {

struct FineTunedPipeline {
  std::string folder;                              // the pipeline folder
  std::string denoiser_folder;                     // folder/unet or folder/transformer, the trained weights
  std::string single_file;                         // the LDM/SGM file for sd1x / sd2x / sdxl, else ""
  std::size_t linked_files = 0, copied_files = 0;  // the unchanged components' files
};

// Writes `denoiser` (diffusers names, the module's parameters and buffers) as the denoiser of `base` into
// `folder`: model_index.json and every component model_index.json lists from the base (vae/ from the run's VAE,
// which pretrained_vae_model_name_or_path may have replaced), the denoiser's config.json and
// diffusion_pytorch_model.safetensors. The folder is assembled under folder + ".partial" and renamed into place, so
// a kill never leaves half a pipeline under its name; an earlier one is replaced. For sd1x / sd2x / sdxl the
// pipeline is also written to `single_file` in the LDM/SGM names (UNet, VAE, text encoders; the configs in its
// metadata), through a temporary file and a rename. Error naming the file that could not be read or written.
FineTunedPipeline write_fine_tuned_pipeline(const config::FamilyPipeline& base, const io::NamedTensors& denoiser,
                                            const std::string& folder, const std::string& single_file);

}  // namespace repa::train
