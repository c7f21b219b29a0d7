#include "core/text/random_text_encoder.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/text/clip_text_model.h"

namespace repa::text {

void write_random_clip_text_encoder(const std::string& folder, const nlohmann::json& config, uint64_t seed) {
  const auto parsed = ClipTextConfig::from_json(config);
  std::filesystem::create_directories(folder);
  auto generator = at::detail::getDefaultCPUGenerator();
  const auto saved_rng = generator.get_state();
  torch::manual_seed(seed);
  ClipTextModel model(parsed);
  generator.set_state(saved_rng);
  io::NamedTensors tensors;
  for (const auto& item : model->named_parameters()) tensors.emplace_back(item.key(), item.value().detach());
  io::save_safetensors(folder + "/model.safetensors", tensors);
  io::write_text_atomically(folder + "/config.json", config.dump(2) + "\n");
}

}  // namespace repa::text
