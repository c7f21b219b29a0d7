#include "core/text/text_encoder_weights.h"

#include <filesystem>
#include <limits>
#include <vector>

#include "core/base/error.h"

namespace repa::text {

std::string find_text_encoder_weights(const std::string& folder) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(folder)) throw InputError("text encoder folder '" + folder + "' does not exist");
  const std::vector<std::string> candidates = {"model.safetensors", "model.safetensors.index.json",
                                               "model.fp16.safetensors", "model.fp16.safetensors.index.json"};
  for (const auto& name : candidates) {
    const auto path = fs::path(folder) / name;
    if (fs::exists(path)) return path.string();
  }
  std::string hint;
  if (fs::exists(fs::path(folder) / "pytorch_model.bin"))
    hint = " (only a pickled pytorch_model.bin is there; convert it to safetensors)";
  throw InputError("text encoder folder '" + folder + "' has no model.safetensors or sharded index" + hint);
}

double lowest_value(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kHalf:
      return -65504.0;
    case torch::kBFloat16:
      return -3.3895313892515355e38;
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    default:
      return std::numeric_limits<float>::lowest();
  }
}

}  // namespace repa::text
