#include "core/config/export.h"

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/config/demo_t2i_source.h"
#include "core/config/registry.h"
#include "core/config/simpletuner_fields.h"
#include "core/config/values.h"

namespace repa::config {
namespace fs = std::filesystem;

namespace {

std::string studio_string(const nlohmann::json& resolved, const std::string& name) {
  const auto value = config_value(resolved, "studio." + name);
  return value.is_string() ? value.get<std::string>() : "";
}

// One image dataset read from the studio's folder, with the run's captions (caption_strategy, file names
// when unset) and the text-embed cache SimpleTuner requires. A model_family config gets SimpleTuner's own
// dataset defaults (aspect buckets of the run's resolution_type, no crop), as the studio trains a family on
// studio.dataset_dir; a config without a family keeps the square centre crops its studio run trains on.
nlohmann::json dataset_backends(const nlohmann::json& resolved, const std::string& dataset_dir) {
  std::string cache = studio_string(resolved, "cache_dir");
  if (cache.empty()) cache = fs::path(dataset_dir).lexically_normal().string() + "-cache";
  const auto resolution = config_value(resolved, "resolution");
  const auto strategy = resolved.value("caption_strategy", nlohmann::json());
  auto backends = nlohmann::json::array({
      {{"id", "studio-dataset"},
       {"type", "local"},
       {"dataset_type", "image"},
       {"instance_data_dir", dataset_dir},
       {"caption_strategy", strategy.is_string() && !strategy.get<std::string>().empty() ? strategy : "filename"},
       {"resolution", resolution},
       {"resolution_type", "pixel"},
       {"minimum_image_size", 0},
       {"crop", true},
       {"crop_style", "center"},
       {"crop_aspect", "square"},
       {"cache_dir_vae", (fs::path(cache) / "simpletuner" / "vae").string()},
       {"repeats", 0}},
      {{"id", "studio-text-embeds"},
       {"type", "local"},
       {"dataset_type", "text_embeds"},
       {"default", true},
       {"cache_dir", (fs::path(cache) / "simpletuner" / "text").string()}},
  });
  for (const char* key : {"instance_prompt", "prepend_instance_prompt"})
    if (resolved.contains(key) && !resolved[key].is_null()) backends[0][key] = resolved[key];
  const auto family = config_value(resolved, "model_family");
  if (family.is_string() && !family.get<std::string>().empty()) {
    backends[0]["resolution_type"] = config_value(resolved, "resolution_type");
    const auto minimum = config_value(resolved, "minimum_image_size");
    if (minimum.is_null())
      backends[0].erase("minimum_image_size");
    else
      backends[0]["minimum_image_size"] = minimum;
    backends[0]["crop"] = false;
    backends[0]["crop_style"] = "random";
    backends[0]["crop_aspect"] = "square";
  }
  return backends;
}

// Temporary file then rename: an interrupted export never leaves half a config behind.
void write_text(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!(file << text)) throw InputError("cannot write '" + temporary.string() + "'");
  }
  fs::rename(temporary, path);
}

}  // namespace

SimpleTunerExport export_simpletuner(const nlohmann::json& resolved, const std::string& out_dir) {
  SimpleTunerExport out;
  out.config = nlohmann::json::object();
  for (const auto& [key, value] : resolved.items()) {
    if (key == "studio" || value.is_null()) continue;
    const OptionSpec* spec = find_option(key);
    if (spec != nullptr && spec->simpletuner) {
      out.config[key] = value;
      continue;
    }
    const SimpleTunerField* field = find_simpletuner_field(key);
    if (field != nullptr && !accepted_by_simpletuner_cli(*field)) {
      out.dropped.push_back(key + ": a SimpleTuner web-interface setting its command line does not accept");
      continue;
    }
    if (field != nullptr) out.config[key] = value;  // kept unchanged: the studio does not use it
  }

  if (uses_demo_t2i_pipeline(resolved)) {  // SimpleTuner cannot make it: the folder a studio run made is what it loads
    out.config.erase("pretrained_model_name_or_path");
    out.dropped.push_back("pretrained_model_name_or_path = \"" + std::string(kDemoT2iPipelineName) +
                          "\": the studio's generated tiny pipeline; after a studio run, point it at " +
                          demo_t2i_pipeline_folder(resolved) + " for SimpleTuner");
  }
  const std::string dataset_dir = studio_string(resolved, "dataset_dir");
  if (dataset_dir.rfind("@", 0) == 0) {
    out.dropped.push_back("studio.dataset_dir = " + describe_value(dataset_dir) +
                          ": the studio's generated dataset; point data_backend_config at a real one for SimpleTuner");
  } else if (!dataset_dir.empty()) {
    const std::string backend_path = (fs::absolute(out_dir) / "multidatabackend.json").lexically_normal().string();
    out.multidatabackend = dataset_backends(resolved, dataset_dir);
    out.config["data_backend_config"] = backend_path;
    out.dropped.push_back("studio.dataset_dir: written as multidatabackend.json (data_backend_config points at it)");
  }

  // Data parallelism: accelerate's launcher settings, in config.json (SimpleTuner's num_processes/num_machines)
  // and in config.env for train.sh, which passes them to `accelerate launch --num_processes=N ...`.
  const auto processes = config_value(resolved, "studio.num_processes");
  const int64_t num_processes = processes.is_number_integer() ? processes.get<int64_t>() : 1;
  if (num_processes > 1) {
    out.config["num_processes"] = num_processes;
    out.config["num_machines"] = 1;
    const auto precision = config_value(resolved, "mixed_precision");
    out.config_env = "# accelerate launch settings read by SimpleTuner's train.sh (written by repa-train export)\n"
                     "TRAINING_NUM_PROCESSES=" + std::to_string(num_processes) + "\n" +
                     "TRAINING_NUM_MACHINES=1\n" +
                     "MIXED_PRECISION=" + (precision.is_string() ? precision.get<std::string>() : "no") + "\n" +
                     "TRAINING_DYNAMO_BACKEND=no\n" +
                     "ACCELERATE_EXTRA_ARGS=\"--multi_gpu\"\n";
    out.dropped.push_back("studio.num_processes = " + std::to_string(num_processes) +
                          ": written as num_processes/num_machines (config.json) and TRAINING_NUM_PROCESSES "
                          "(config.env, for train.sh's accelerate launch)");
  }

  int at_default = 0;
  for (const auto& spec : registry()) {
    if (spec.simpletuner || spec.key == "studio.dataset_dir" || spec.key == "studio.num_processes") continue;
    const auto value = config_value(resolved, spec.key);
    if (value == spec.default_value) {
      ++at_default;
      continue;
    }
    out.dropped.push_back(spec.key + " = " + describe_value(value) +
                          ": studio-only setting, SimpleTuner has no such option");
  }
  if (at_default > 0)
    out.dropped.push_back(std::to_string(at_default) + " other studio-only settings at their defaults");
  const bool aligning =
      config_value(resolved, "crepa_enabled") == true || config_value(resolved, "urepa_enabled") == true;
  if (aligning && config_value(resolved, "studio.teacher_tokens") == "patch")
    out.dropped.push_back(
        "studio.teacher_tokens: the studio aligns to the encoder's patch tokens; SimpleTuner aligns "
        "to its own choice of tokens (effectively the CLS token), so alignment scores will differ");
  return out;
}

SimpleTunerExport write_simpletuner_export(const nlohmann::json& resolved, const std::string& out_dir) {
  const auto exported = export_simpletuner(resolved, out_dir);
  fs::create_directories(out_dir);
  write_text(fs::path(out_dir) / "config.json", exported.config.dump(2) + "\n");
  if (!exported.multidatabackend.is_null())
    write_text(fs::path(out_dir) / "multidatabackend.json", exported.multidatabackend.dump(2) + "\n");
  if (!exported.config_env.empty()) write_text(fs::path(out_dir) / "config.env", exported.config_env);
  return exported;
}

void write_studio_export(const nlohmann::json& resolved, const std::string& out_dir) {
  fs::create_directories(out_dir);
  write_text(fs::path(out_dir) / "config.json", resolved.dump(2) + "\n");
}

std::vector<Problem> check_paths(const nlohmann::json& resolved) {
  std::vector<Problem> problems;
  // kind: 'd' a folder, 'f' a file, '?' either.
  const auto must_exist = [&](const std::string& key, char kind) {
    const auto value = config_value(resolved, key);
    if (!value.is_string() || value.get<std::string>().empty()) return;
    const fs::path path(value.get<std::string>());
    std::error_code error;
    if (!fs::exists(path, error))
      problems.push_back({key, "'" + path.string() + "' does not exist"});
    else if (kind == 'd' && !fs::is_directory(path, error))
      problems.push_back({key, "'" + path.string() + "' is not a folder"});
    else if (kind == 'f' && fs::is_directory(path, error))
      problems.push_back({key, "'" + path.string() + "' is a folder, expected a file"});
  };
  // "@demo" names the generated demo dataset, made when the run starts.
  if (studio_string(resolved, "dataset_dir").rfind("@", 0) != 0) must_exist("studio.dataset_dir", 'd');
  must_exist("studio.encoder_weights", 'f');
  must_exist("studio.vae_path", '?');
  must_exist("data_backend_config", 'f');
  const auto unet_config = studio_string(resolved, "unet_config");
  if (fs::path(unet_config).extension() == ".json") must_exist("studio.unet_config", 'f');
  // Hub names ("org/model") are not local paths; only check what is written as one.
  for (const std::string key : {"pretrained_model_name_or_path", "pretrained_vae_model_name_or_path"}) {
    const auto value = config_value(resolved, key);
    if (!value.is_string()) continue;
    const std::string text = value.get<std::string>();
    if (!text.empty() && (text[0] == '/' || text[0] == '.' || text[0] == '~')) must_exist(key, '?');
  }
  const auto resume = config_value(resolved, "resume_from_checkpoint");
  if (resume.is_string() && resume != "latest" && resume != "") must_exist("resume_from_checkpoint", '?');
  // The output folder may not exist yet; its nearest existing parent must be a folder we can create it in.
  const auto output = config_value(resolved, "output_dir");
  if (output.is_string() && !output.get<std::string>().empty()) {
    fs::path probe = fs::absolute(output.get<std::string>());
    std::error_code error;
    while (!probe.empty() && !fs::exists(probe, error) && probe != probe.parent_path()) probe = probe.parent_path();
    if (!fs::is_directory(probe, error))
      problems.push_back({"output_dir", "'" + output.get<std::string>() + "' cannot be created: '" + probe.string() +
                                            "' is not a folder"});
  }
  return problems;
}

}  // namespace repa::config
