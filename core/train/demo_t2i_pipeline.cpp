#include "core/train/demo_t2i_pipeline.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/demo_t2i_source.h"
#include "core/text/clip_tokenizer.h"
#include "core/text/demo_clip_vocabulary.h"
#include "core/text/random_text_encoder.h"
#include "core/train/tiny_pipeline.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStampName = "demo_t2i_pipeline.json";

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_bounded(text.str(), path.string());
}

}  // namespace

void write_demo_t2i_pipeline(const std::string& folder, const std::string& family, uint64_t seed) {
  const fs::path root(folder);
  const fs::path vocabulary = root / "demo-tokenizer-source";
  text::write_demo_clip_tokenizer(vocabulary.string());
  write_tiny_sd_pipeline(folder, family, vocabulary.string(), seed);
  fs::remove_all(vocabulary);
  // The tiny pipeline's encoders are sized for CLIP's own vocabulary; the demo's is a few hundred tokens.
  const auto tokenizer = text::ClipTokenizer::from_folder((root / "tokenizer").string());
  uint64_t encoder_seed = seed + 1;
  for (const char* encoder : {"text_encoder", "text_encoder_2"}) {
    const fs::path config_path = root / encoder / "config.json";
    if (!fs::exists(config_path)) continue;
    auto config = read_json(config_path);
    config["vocab_size"] = static_cast<int64_t>(tokenizer.vocab_size());
    config["bos_token_id"] = tokenizer.bos_id();
    config["eos_token_id"] = tokenizer.eos_id();
    text::write_random_clip_text_encoder((root / encoder).string(), config, encoder_seed++);
  }
}

std::string ensure_demo_t2i_pipeline(const nlohmann::json& config) {
  if (!config::uses_demo_t2i_pipeline(config)) return "";
  const auto family_it = config.find("model_family");
  const std::string family =
      family_it != config.end() && family_it->is_string() ? family_it->get<std::string>() : std::string("sd1x");
  if (family != "sd1x" && family != "sd2x" && family != "sdxl")
    throw InputError(std::string("pretrained_model_name_or_path '") + config::kDemoT2iPipelineName +
                     "' makes a tiny SD pipeline (model_family sd1x, sd2x or sdxl), not one for model_family '" +
                     family + "'");
  const std::string folder = config::demo_t2i_pipeline_folder(config);
  const nlohmann::json stamp = {{"generator", "repa-studio demo-t2i pipeline"}, {"version", 1}, {"family", family},
                                {"seed", 0}};
  const fs::path stamp_path = fs::path(folder) / kStampName;
  if (fs::exists(stamp_path)) {
    nlohmann::json existing;
    try {
      existing = read_json(stamp_path);
    } catch (const InputError&) {
      existing = nullptr;  // a torn stamp: the folder is made again
    }
    if (existing == stamp) return folder;
    fs::remove_all(folder);  // an older generation of ours
  } else if (fs::exists(folder) && !fs::is_empty(folder)) {
    throw InputError("'" + folder + "' holds files that are not the generated demo-t2i pipeline; move them to use " +
                     config::kDemoT2iPipelineName);
  }
  write_demo_t2i_pipeline(folder, family, 0);
  write_json_file(stamp_path.string(), stamp);
  return folder;
}

}  // namespace repa::train
