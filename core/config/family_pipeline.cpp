#include "core/config/family_pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/demo_t2i_source.h"
#include "core/config/flow_family_settings.h"
#include "core/config/native_training.h"
#include "core/config/pixart_family_settings.h"
#include "core/config/model_source.h"
#include "core/config/sd_single_file.h"

namespace repa::config {

namespace fs = std::filesystem;

namespace {

// What each family needs from its pipeline folder and what it trains with by default (SimpleTuner's
// PREDICTION_TYPE per model class; flow families regress noise − latents).
struct FamilyTraits {
  const char* denoiser;
  const char* objective;
  const char* example_repo;
};

const std::map<std::string, FamilyTraits>& family_traits() {
  static const std::map<std::string, FamilyTraits> table = {
      {"sd1x", {"unet", "vp_epsilon", "stable-diffusion-v1-5/stable-diffusion-v1-5"}},
      {"sd2x", {"unet", "vp_v", "stabilityai/stable-diffusion-2-1"}},
      {"sdxl", {"unet", "vp_epsilon", "stabilityai/stable-diffusion-xl-base-1.0"}},
      {"pixart", {"transformer", "vp_epsilon", "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"}},
      {"sd3", {"transformer", "linear", "stabilityai/stable-diffusion-3.5-medium"}},
      {"flux", {"transformer", "linear", "black-forest-labs/FLUX.1-dev"}},
      {"chroma", {"transformer", "linear", "lodestones/Chroma1-HD"}},
  };
  return table;
}

const FamilyTraits& traits_of(const std::string& family) {
  const auto it = family_traits().find(family);
  if (it == family_traits().end()) throw InputError("model_family '" + family + "' has no pipeline description");
  return it->second;
}

// A top-level string setting, "" when absent, null or not a string.
std::string text_or(const nlohmann::json& config, const std::string& key, const std::string& fallback) {
  const auto it = config.find(key);
  return it != config.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::string family_of(const nlohmann::json& config) {
  const auto it = config.find("model_family");
  return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

nlohmann::json read_json_object(const fs::path& path) {
  if (!fs::exists(path)) return nlohmann::json::object();
  auto json = parse_json_bounded(read_file(path), path.string());
  if (!json.is_object()) throw InputError("'" + path.string() + "' is not a JSON object");
  return json;
}

// The folders a family's pipeline must hold to train (the scheduler is optional: the family's defaults apply).
std::vector<std::string> required_components(const std::string& family, bool vae_elsewhere) {
  std::vector<std::string> out;
  for (const auto& component : family_components(family)) {
    if (component == "scheduler" || (component == "vae" && vae_elsewhere)) continue;
    out.push_back(component);
  }
  return out;
}

std::string fetch_hint(const std::string& family) {
  return "`repa-train fetch " + example_repository(family) + " --family " + family + "`";
}

// pretrained_vae_model_name_or_path as SimpleTuner applies it: only SDXL-VAE families take an SDXL VAE; its
// default (the fp16-fix VAE) is used when fetched, otherwise the pipeline's own vae/ (with a note).
std::string vae_override(const nlohmann::json& config, const std::string& family, std::string* note) {
  const std::string value = text_or(config, "pretrained_vae_model_name_or_path", "");
  if (value.empty() || value == "''") return "";
  if (family == "sd3") {  // SimpleTuner's SD3 check_user_config drops custom VAEs
    if (note)
      *note = "pretrained_vae_model_name_or_path is ignored for sd3, as SimpleTuner does: the pipeline's vae/ is used";
    return "";
  }
  const bool sdxl_vae_family = family == "sdxl" || family == "pixart" || family == "kolors";
  if (!sdxl_vae_family && value.find("sdxl") != std::string::npos) {
    if (note) *note = "pretrained_vae_model_name_or_path '" + value + "' is an SDXL VAE, which model_family '" +
                      family + "' does not use: the pipeline's own vae/ is used (as SimpleTuner does)";
    return "";
  }
  if (fs::is_directory(value)) return value;
  if (is_hub_repo_id(value)) {
    const auto folder = hub_model_folder(value);
    if (fs::exists(fs::path(folder) / kHubFetchRecord) && fs::is_directory(folder)) {
      // A fetched VAE repository holds the VAE at its root (madebyollin/sdxl-vae-fp16-fix) or under vae/.
      return fs::exists(fs::path(folder) / "config.json") ? folder : (fs::path(folder) / "vae").string();
    }
    if (note) *note = "pretrained_vae_model_name_or_path '" + value + "' is not fetched (`repa-train fetch " + value +
                      " --include '*'`): the pipeline's own vae/ is used";
    return "";
  }
  throw InputError("pretrained_vae_model_name_or_path '" + value +
                   "' is neither a VAE folder here nor a Hub repository id (owner/name)");
}

}  // namespace

std::string example_repository(const std::string& family) {
  const auto it = family_traits().find(family);
  return it == family_traits().end() ? std::string() : it->second.example_repo;
}

bool is_pipeline_family(const nlohmann::json& config) {
  const auto family = family_of(config);
  if (family.empty()) return false;
  const auto& native = natively_trained_families();
  return std::find(native.begin(), native.end(), family) != native.end();
}

std::string pipeline_folder_problem(const nlohmann::json& config) {
  if (!is_pipeline_family(config)) return "";
  const auto family = family_of(config);
  const std::string value = text_or(config, "pretrained_model_name_or_path", "");
  if (value.empty())
    return "model_family '" + family +
           "' trains from a diffusers pipeline folder: set pretrained_model_name_or_path to one (a folder with " +
           "model_index.json, " + traits_of(family).denoiser + "/, vae/, text_encoder/ and tokenizer/), or to a Hub "
           "repository fetched with " + fetch_hint(family);
  if (value == kDemoT2iPipelineName) return "";  // generated when the run starts
  std::string folder;
  try {
    folder = resolve_model_source(value, "pretrained_model_name_or_path", family);
  } catch (const InputError& e) {
    return e.what();
  }
  if (fs::is_regular_file(folder)) return sd_single_file_problem(folder, value, family);
  if (!fs::is_directory(folder))
    return "pretrained_model_name_or_path '" + value + "' is not a folder here; set it to a diffusers pipeline "
           "folder or fetch one with " + fetch_hint(family);
  if (const auto other = pipeline_class_problem(folder, family); !other.empty()) return other;
  std::string missing;
  std::string note;
  bool vae_elsewhere = false;
  try {
    vae_elsewhere = !vae_override(config, family, &note).empty();
  } catch (const InputError& e) {
    return e.what();
  }
  for (const auto& component : required_components(family, vae_elsewhere))
    if (!fs::is_directory(fs::path(folder) / component)) missing += (missing.empty() ? "" : ", ") + component + "/";
  if (!missing.empty())
    return "pretrained_model_name_or_path '" + value + "' lacks " + missing + " for model_family '" + family +
           "'; a complete pipeline comes with " + fetch_hint(family);
  return "";
}

FamilyPipeline resolve_family_pipeline(const nlohmann::json& config) {
  if (const auto problem = pipeline_folder_problem(config); !problem.empty()) throw InputError(problem);
  FamilyPipeline out;
  out.family = family_of(config);
  out.folder = uses_demo_t2i_pipeline(config)
                   ? demo_t2i_pipeline_folder(config)
                   : resolve_model_source(text_or(config, "pretrained_model_name_or_path", ""),
                                          "pretrained_model_name_or_path", out.family);
  if (fs::is_regular_file(out.folder)) out.folder = ensure_sd_single_file_pipeline(out.folder, out.family);
  out.denoiser_folder = (fs::path(out.folder) / traits_of(out.family).denoiser).string();
  const auto vae = vae_override(config, out.family, nullptr);
  out.vae_folder = vae.empty() ? (fs::path(out.folder) / "vae").string() : vae;
  out.scheduler = read_json_object(fs::path(out.folder) / "scheduler" / "scheduler_config.json");
  return out;
}

nlohmann::json with_family_settings(const nlohmann::json& config, const FamilyPipeline& pipeline) {
  nlohmann::json out = with_pixart_family_rules(with_flow_family_rules(config, pipeline), pipeline);
  if (!out.contains("studio") || !out["studio"].is_object()) out["studio"] = nlohmann::json::object();
  auto& studio = out["studio"];
  // What the family decides overrides the studio settings of from-scratch runs: a resolved config carries their
  // registry defaults (text_conditioning "sd1x", objective "linear", sampler "euler"), which are not the user's.
  // The VAE is chosen with pretrained_vae_model_name_or_path, the objective with prediction_type.
  studio["architecture"] = "family";
  studio["text_conditioning"] = pipeline.family;
  studio["text_encoder_path"] = pipeline.folder;
  studio["vae_path"] = pipeline.vae_folder;
  const auto vae_config = read_json_object(fs::path(pipeline.vae_folder) / "config.json");
  studio["latent_scaling_factor"] = vae_config.contains("scaling_factor") && vae_config["scaling_factor"].is_number()
                                        ? vae_config["scaling_factor"]
                                        : nlohmann::json(0.18215);
  studio["latent_shift_factor"] = vae_config.contains("shift_factor") && vae_config["shift_factor"].is_number()
                                      ? vae_config["shift_factor"]
                                      : nlohmann::json(0.0);
  std::string objective = traits_of(pipeline.family).objective;
  const std::string prediction = text_or(config, "prediction_type", "");
  if (objective != "linear") {
    if (prediction == "epsilon") objective = "vp_epsilon";
    else if (prediction == "v_prediction") objective = "vp_v";
    else if (!prediction.empty() && prediction != "None")
      throw InputError("prediction_type '" + prediction + "' is not one model_family '" + pipeline.family +
                       "' trains with here (epsilon, v_prediction)");
  }
  studio["objective"] = objective;
  // Euler and Euler-Maruyama integrate flows: the VP families sample with DDIM unless the run names DDIM or
  // DPM++ 2M Karras; the flow families with Euler unless the run names Euler-Maruyama.
  const std::string sampler = studio.value("sampler", std::string());
  if (objective != "linear" && sampler != "ddim" && sampler != "dpmpp_2m_karras") studio["sampler"] = "ddim";
  if (objective == "linear" && sampler != "euler_maruyama") studio["sampler"] = "euler";
  return out;
}

}  // namespace repa::config
