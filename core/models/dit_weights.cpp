#include "core/models/dit_weights.h"

#include <filesystem>

#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"
#include "core/nn/state_loading.h"

namespace repa::models::dit {

void load_weights(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& tensors,
                  const std::string& origin) {
  nn::load_state(model, tensors, origin);
}

void load_weights(torch::nn::Module& model, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  diffusers::load_checkpoint(model, io::SafetensorsCheckpoint::open(file));
}

}  // namespace repa::models::dit
