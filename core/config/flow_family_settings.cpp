#include "core/config/flow_family_settings.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/model_source.h"

namespace repa::config {

namespace fs = std::filesystem;

namespace {

// A top-level string option; `fallback` when absent or null.
std::string text_of(const nlohmann::json& config, const std::string& key, const std::string& fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_string()) throw InputError(key + " must be a string, got " + json_excerpt(*it));
  return it->get<std::string>();
}

bool flag_of(const nlohmann::json& config, const std::string& key) {
  const auto it = config.find(key);
  return it != config.end() && it->is_boolean() && it->get<bool>();
}

// tokenizer_max_length as a positive integer, or 0 when unset.
int64_t max_length_of(const nlohmann::json& config) {
  const auto it = config.find("tokenizer_max_length");
  if (it == config.end() || it->is_null()) return 0;
  if (!it->is_number_integer() || it->get<int64_t>() <= 0)
    throw InputError("tokenizer_max_length must be a positive integer, got " + json_excerpt(*it));
  return it->get<int64_t>();
}

// t5_padding "zero" multiplies the T5 states by the tokenizer mask; the studio caches them unmodified.
void check_t5_padding(const nlohmann::json& config, const std::string& family) {
  const std::string padding = text_of(config, "t5_padding", "unmodified");
  if (padding != "unmodified")
    throw InputError("t5_padding '" + padding + "' is not supported for model_family '" + family +
                     "': the studio trains with T5's states as the encoder gives them (SimpleTuner's default "
                     "'unmodified')");
}

void apply_sd3(nlohmann::json& out) {
  // SimpleTuner: T5 keeps 154 tokens by default and never more unless i_know_what_i_am_doing.
  constexpr int64_t kT5Max = 154;
  const int64_t asked = max_length_of(out);
  out["tokenizer_max_length"] =
      asked == 0 ? kT5Max : (asked > kT5Max && !flag_of(out, "i_know_what_i_am_doing") ? kT5Max : asked);
  const std::string clip = text_of(out, "sd3_clip_uncond_behaviour", "empty_string");
  const std::string t5 = text_of(out, "sd3_t5_uncond_behaviour", clip);
  for (const auto& [key, value] : {std::pair{"sd3_clip_uncond_behaviour", clip}, {"sd3_t5_uncond_behaviour", t5}})
    if (value != "empty_string")
      throw InputError(std::string(key) + " '" + value +
                       "' is not supported: the studio conditions a dropped caption on the encoders' states of the "
                       "empty string ('empty_string', SimpleTuner's default)");
  check_t5_padding(out, "sd3");
}

void apply_flux(nlohmann::json& out, const FamilyPipeline& pipeline) {
  const std::string flavour = flux_flavour(pipeline.denoiser_folder);
  const std::string asked = text_of(out, "model_flavour", "");
  if ((asked == "dev" || asked == "schnell") && asked != flavour)
    throw InputError("model_flavour is " + asked + ", but '" + pipeline.denoiser_folder + "/config.json' is a " +
                     flavour + " transformer (guidance_embeds " + (flavour == "dev" ? "true" : "false") + ")");
  if (!asked.empty() && asked != "dev" && asked != "schnell")
    throw InputError("model_flavour '" + asked + "' is not a Flux flavour the studio trains (dev, schnell)");
  // SimpleTuner ignores tokenizer_max_length for Flux: 512 T5 tokens for dev, 256 for schnell.
  out["tokenizer_max_length"] = flavour == "dev" ? 512 : 256;
  const std::string mode = text_of(out, "flux_guidance_mode", "constant");
  if (mode != "constant" && mode != "random-range")
    throw InputError("flux_guidance_mode '" + mode + "' is unknown (constant, random-range)");
  if (flavour == "schnell" && !flag_of(out, "flux_fast_schedule") && !flag_of(out, "i_know_what_i_am_doing"))
    throw InputError("'" + pipeline.denoiser_folder +
                     "' is a Flux schnell transformer (no guidance embedding): SimpleTuner trains schnell only with "
                     "flux_fast_schedule true (or i_know_what_i_am_doing)");
  check_t5_padding(out, "flux");
}

void apply_chroma(nlohmann::json& out) {
  if (max_length_of(out) == 0) out["tokenizer_max_length"] = 512;
  check_t5_padding(out, "chroma");
}

}  // namespace

nlohmann::json transformer_config(const std::string& transformer_folder) {
  return read_model_folder_config(transformer_folder, "a diffusers transformer/ folder");
}

std::string transformer_class_problem(const std::string& transformer_folder, const std::string& family) {
  static const std::map<std::string, std::string> expected = {
      {"sd3", "SD3Transformer2DModel"}, {"flux", "FluxTransformer2DModel"}, {"chroma", "ChromaTransformer2DModel"}};
  const auto want = expected.find(family);
  if (want == expected.end()) return "";
  const auto config = transformer_config(transformer_folder);
  const auto it = config.find("_class_name");
  if (it == config.end() || !it->is_string() || it->get<std::string>() == want->second) return "";
  std::string looks = it->get<std::string>();
  for (const auto& [name, cls] : expected)
    if (cls == looks) looks += " (a " + name + " model)";
  return "'" + transformer_folder + "/config.json' is a " + looks + "; model_family " + family + " needs a " +
         want->second;
}

std::string pipeline_class_problem(const std::string& folder, const std::string& family) {
  static const std::map<std::string, std::string> expected = {
      {"sd3", "StableDiffusion3Pipeline"}, {"flux", "FluxPipeline"}, {"chroma", "ChromaPipeline"}};
  const auto want = expected.find(family);
  const fs::path path = fs::path(folder) / "model_index.json";
  if (want == expected.end() || !fs::is_regular_file(path)) return "";
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string why;
  const auto index = try_parse_json_bounded(text.str(), &why);
  if (!index.is_object()) return "'" + path.string() + "' is not a JSON object" + (why.empty() ? "" : ": " + why);
  const auto it = index.find("_class_name");
  if (it == index.end() || !it->is_string() || it->get<std::string>() == want->second) return "";
  std::string looks = it->get<std::string>();
  for (const auto& [name, cls] : expected)
    if (cls == looks) looks += " (a " + name + " model)";
  return "'" + folder + "' holds a " + looks + "; model_family " + family + " trains from a " + want->second +
         " folder";
}

std::string flux_flavour(const std::string& transformer_folder) {
  const fs::path path = fs::path(transformer_folder) / "config.json";
  const auto config = transformer_config(transformer_folder);
  const auto it = config.find("guidance_embeds");
  if (it != config.end() && !it->is_boolean() && !it->is_null())
    throw InputError("'" + path.string() + "': guidance_embeds must be true or false, got " + json_excerpt(*it));
  return it != config.end() && it->is_boolean() && it->get<bool>() ? "dev" : "schnell";
}

nlohmann::json with_flow_family_rules(const nlohmann::json& config, const FamilyPipeline& pipeline) {
  nlohmann::json out = config;
  if (const auto problem = transformer_class_problem(pipeline.denoiser_folder, pipeline.family); !problem.empty())
    throw InputError(problem);
  if (pipeline.family == "sd3")
    apply_sd3(out);
  else if (pipeline.family == "flux")
    apply_flux(out, pipeline);
  else if (pipeline.family == "chroma")
    apply_chroma(out);
  return out;
}

}  // namespace repa::config
