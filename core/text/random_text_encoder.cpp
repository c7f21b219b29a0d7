#include "core/text/random_text_encoder.h"


#include <filesystem>
#include <functional>

#include "core/base/generator_scope.h"
#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/text/clip_text_model.h"
#include "core/text/t5_encoder.h"

namespace repa::text {

namespace {

template <class Model>
void write_random(const std::string& folder, const nlohmann::json& config, uint64_t seed,
                  const std::function<Model()>& make) {
  std::filesystem::create_directories(folder);
  Model model{nullptr};
  {
    GeneratorScope seeded(seed);
    model = make();
  }
  io::NamedTensors tensors;
  for (const auto& item : model->named_parameters()) tensors.emplace_back(item.key(), item.value().detach());
  io::save_safetensors(folder + "/model.safetensors", tensors);
  io::write_text_atomically(folder + "/config.json", config.dump(2) + "\n");
}

}  // namespace

void write_random_clip_text_encoder(const std::string& folder, const nlohmann::json& config, uint64_t seed) {
  const auto parsed = ClipTextConfig::from_json(config);
  write_random<ClipTextModel>(folder, config, seed, [&] { return ClipTextModel(parsed); });
}

void write_random_t5_encoder(const std::string& folder, const nlohmann::json& config, uint64_t seed) {
  const auto parsed = T5EncoderConfig::from_json(config);
  write_random<T5EncoderModel>(folder, config, seed, [&] { return T5EncoderModel(parsed); });
}

}  // namespace repa::text
