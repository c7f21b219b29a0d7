#include "core/models/hidream_official_names.h"

#include <filesystem>
#include <map>

#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/models/dit_weights.h"
#include "core/models/official_names.h"

namespace repa::models {

void load_hidream_weights(HiDreamTransformer& model, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  const auto checkpoint = io::SafetensorsCheckpoint::open(file);
  std::map<std::string, torch::Tensor> tensors;
  bool prefixed = false;
  for (const auto& name : checkpoint.names()) {
    const auto stripped = strip_single_file_prefix(name);
    prefixed = prefixed || stripped != name;
    tensors[stripped] = checkpoint.tensor(name, /*view=*/true);
  }
  if (!prefixed) {
    diffusers::load_checkpoint(*model, checkpoint);
    return;
  }
  dit::load_weights(*model, tensors, file + " (single file, model.diffusion_model. prefix)");
}

}  // namespace repa::models
