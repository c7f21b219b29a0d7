#include "core/models/sd_pipeline_folder.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/sd_single_file.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_weights.h"

namespace repa::models {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& text, const std::string& head) {
  return text.rfind(head, 0) == 0;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read '" + path.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_bounded(text.str(), path.string());
}

void write_json(const fs::path& path, const nlohmann::json& value) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  if (!out) throw Error("cannot write '" + path.string() + "'");
}

TensorMap read_weights(const std::string& file) {
  const auto checkpoint = io::SafetensorsCheckpoint::open(file);
  TensorMap out;
  for (const auto& name : checkpoint.names()) out[name] = checkpoint.tensor(name, /*view=*/true);
  return out;
}

void save(const fs::path& path, const TensorMap& tensors,
          const std::map<std::string, std::string>& metadata = {{"format", "pt"}}) {
  fs::create_directories(path.parent_path());
  io::save_safetensors(path.string(), io::NamedTensors(tensors.begin(), tensors.end()), metadata);
}

}  // namespace

SdPipelineParts read_sd_pipeline_folder(const std::string& folder, const std::string& family,
                                        const std::string& unet_folder) {
  SdPipelineParts parts;
  parts.family = family;
  if (family != "sd1x" && family != "sd2x" && family != "sdxl")
    throw InputError("no LDM single-file table for model_family '" + family + "' (sd1x, sd2x, sdxl)");
  const auto component = [&](const std::string& name, const fs::path& dir) {
    if (!fs::exists(dir / "config.json")) return;
    parts.configs[name] = read_json(dir / "config.json");
    const auto model = dir / "model.safetensors";
    parts.weights[name] = read_weights(fs::exists(model) ? model.string() : diffusers::find_weights_file(dir.string()));
  };
  component("unet", unet_folder.empty() ? fs::path(folder) / "unet" : fs::path(unet_folder));
  component("vae", fs::path(folder) / "vae");
  for (const std::string part : {"text_encoder", "text_encoder_2"}) component(part, fs::path(folder) / part);
  if (fs::exists(fs::path(folder) / "scheduler" / "scheduler_config.json"))
    parts.configs["scheduler"] = read_json(fs::path(folder) / "scheduler" / "scheduler_config.json");
  if (!parts.weights.count("unet"))
    throw InputError("'" + (unet_folder.empty() ? folder + "/unet" : unet_folder) +
                     "' has no config.json: no UNet to write");
  return parts;
}

void write_sd_pipeline_folder(const SdPipelineParts& parts, const std::string& folder,
                              const std::map<std::string, std::string>& tokenizers) {
  const fs::path root(folder);
  const bool xl = parts.family == "sdxl";
  nlohmann::json index = {{"_class_name", xl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline"},
                          {"unet", {"diffusers", "UNet2DConditionModel"}},
                          {"vae", {"diffusers", "AutoencoderKL"}},
                          {"text_encoder", {"transformers", "CLIPTextModel"}},
                          {"tokenizer", {"transformers", "CLIPTokenizer"}}};
  if (xl) {
    index["text_encoder_2"] = {"transformers", "CLIPTextModelWithProjection"};
    index["tokenizer_2"] = {"transformers", "CLIPTokenizer"};
  }
  const auto scheduler = parts.configs.find("scheduler");
  if (scheduler != parts.configs.end()) {
    index["scheduler"] = {"diffusers", scheduler->second.value("_class_name", "DDPMScheduler")};
    write_json(root / "scheduler" / "scheduler_config.json", scheduler->second);
  }
  write_json(root / "model_index.json", index);
  for (const auto& [component, tensors] : parts.weights) {
    write_json(root / component / "config.json", parts.configs.at(component));
    const bool text = starts_with(component, "text_encoder");
    save(root / component / (text ? "model.safetensors" : "diffusion_pytorch_model.safetensors"), tensors);
  }
  for (const auto& [component, source] : tokenizers) {
    fs::create_directories(root / component);
    for (const auto& entry : fs::directory_iterator(source))
      if (entry.is_regular_file())
        fs::copy_file(entry.path(), root / component / entry.path().filename(), fs::copy_options::overwrite_existing);
  }
}

void write_ldm_single_file(const std::string& pipeline_folder, const std::string& family, const std::string& out,
                           const std::string& unet_folder) {
  const auto parts = read_sd_pipeline_folder(pipeline_folder, family, unet_folder);
  const auto tensors = ldm_single_file_tensors(parts, pipeline_folder);
  save(out, tensors, ldm_single_file_metadata(parts));
}

std::string sd_family_of_unet_config(const nlohmann::json& c) {
  if (!c.is_object()) return "";
  if (c.value("addition_embed_type", std::string()) == "text_time") return "sdxl";
  const auto cross = c.find("cross_attention_dim");
  if (cross == c.end() || !cross->is_number_integer()) return "";
  // SD 2.x's UNet uses linear projections and 64-wide heads; SD 1.x's 1×1 convolutions.
  return c.value("use_linear_projection", false) ? "sd2x" : "sd1x";
}

std::string sd_unet_folder_family(const std::string& folder) {
  const auto config = fs::path(folder) / "config.json";
  if (!fs::is_directory(folder) || !fs::exists(config)) return "";
  const auto json = read_json(config);
  if (json.value("_class_name", std::string()) != "UNet2DConditionModel") return "";
  return sd_family_of_unet_config(json);
}

std::size_t write_sd_unet_single_file(const std::string& unet_folder, const std::string& family, const TensorMap& unet,
                                      const std::string& out) {
  auto folder = fs::path(unet_folder);
  if (folder.filename().empty()) folder = folder.parent_path();
  const auto pipeline = folder.parent_path();
  SdPipelineParts parts;
  if (fs::exists(pipeline / "model_index.json")) {
    parts = read_sd_pipeline_folder(pipeline.string(), family, folder.string());
  } else {
    parts.family = family;
    parts.configs["unet"] = read_json(folder / "config.json");
  }
  parts.weights["unet"] = unet;
  const auto tensors = ldm_single_file_tensors(parts, folder.string());
  save(out, tensors, ldm_single_file_metadata(parts));
  return tensors.size();
}

void install_ldm_single_file_converter() {
  config::set_sd_single_file_converter(
      [](const std::string& file, const std::string& family, const std::string& folder) {
        const auto tokenizers = config::sd_single_file_tokenizers(file, family);
        for (const auto& [component, source] : tokenizers)
          if (source.empty()) throw InputError(config::sd_single_file_problem(file, file, family));
        write_sd_pipeline_folder(read_ldm_single_file(file, family), folder, tokenizers);
      });
}

}  // namespace repa::models
