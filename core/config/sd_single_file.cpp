#include "core/config/sd_single_file.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/family_pipeline.h"
#include "core/config/model_source.h"

namespace repa::config {

namespace fs = std::filesystem;

namespace {

constexpr const char* kConvertedRecord = ".repa-single-file.json";

SdSingleFileConverter& converter_slot() {
  static SdSingleFileConverter converter = nullptr;
  return converter;
}

bool starts_with(const std::string& text, const std::string& head) {
  return text.rfind(head, 0) == 0;
}

bool has_prefix(const SafetensorsHeader& header, const std::string& prefix) {
  const auto it = header.shapes.lower_bound(prefix);
  return it != header.shapes.end() && starts_with(it->first, prefix);
}

std::string label(const std::string& family) {
  if (family == "sd1x") return "SD 1.x";
  if (family == "sd2x") return "SD 2.x";
  if (family == "sdxl") return "SDXL";
  return family;
}

std::vector<std::string> tokenizer_folders(const std::string& family) {
  if (family == "sdxl") return {"tokenizer", "tokenizer_2"};
  return {"tokenizer"};
}

bool is_clip_tokenizer(const fs::path& folder) {
  return fs::exists(folder / "vocab.json") && fs::exists(folder / "merges.txt");
}

// FNV-1a: a stable name for the converted folder of one version of one file.
std::string stable_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string file_identity(const std::string& file) {
  const auto path = fs::absolute(file).lexically_normal().string();
  const auto size = fs::file_size(file);
  const auto time = fs::last_write_time(file).time_since_epoch().count();
  return path + "|" + std::to_string(size) + "|" + std::to_string(static_cast<long long>(time));
}

}  // namespace

SafetensorsHeader read_safetensors_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open '" + path + "'");
  unsigned char size_bytes[8] = {};
  in.read(reinterpret_cast<char*>(size_bytes), 8);
  if (in.gcount() != 8) throw InputError("'" + path + "' is too short to be a .safetensors file");
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
  const auto file_size = fs::file_size(path);
  if (size == 0 || size > 100ull * 1024 * 1024 || size > file_size - 8)
    throw InputError("'" + path + "' has a header length of " + std::to_string(size) +
                     " bytes, which does not fit a .safetensors file of " + std::to_string(file_size) + " bytes");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  const auto json = parse_json_bounded(text, path + " (safetensors header)");
  if (!json.is_object()) throw InputError("'" + path + "': the safetensors header is not a JSON object");
  SafetensorsHeader header;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      if (entry.is_object())
        for (const auto& [key, value] : entry.items())
          if (value.is_string()) header.metadata[key] = value.get<std::string>();
      continue;
    }
    std::vector<int64_t> shape;
    if (entry.is_object() && entry.contains("shape") && entry["shape"].is_array())
      for (const auto& d : entry["shape"])
        if (d.is_number_integer()) shape.push_back(d.get<int64_t>());
    header.shapes[name] = shape;
  }
  return header;
}

SdFileFamily sd_single_file_family(const SafetensorsHeader& h) {
  if (has_prefix(h, "conditioner.embedders.1.")) return {"sdxl", "it has conditioner.embedders.1"};
  if (has_prefix(h, "cond_stage_model.model.")) return {"sd2x", "it has cond_stage_model.model (OpenCLIP-H)"};
  if (has_prefix(h, "cond_stage_model.transformer.")) return {"sd1x", "it has cond_stage_model.transformer (CLIP-L)"};
  if (has_prefix(h, "model.diffusion_model.input_blocks.")) {
    if (has_prefix(h, "model.diffusion_model.label_emb.")) return {"sdxl", "its UNet has label_emb (SDXL's time ids)"};
    for (const auto& [name, shape] : h.shapes) {
      const std::string tail = "attn2.to_k.weight";
      if (!starts_with(name, "model.diffusion_model.") || name.size() < tail.size() ||
          name.compare(name.size() - tail.size(), tail.size(), tail) != 0 || shape.size() != 2)
        continue;
      if (shape[1] == 768) return {"sd1x", "its UNet's cross-attention takes 768-wide text (CLIP-L)"};
      if (shape[1] == 1024) return {"sd2x", "its UNet's cross-attention takes 1024-wide text (OpenCLIP-H)"};
      break;
    }
    return {"", "an LDM UNet (model.diffusion_model.input_blocks.*) of no known SD family"};
  }
  if (has_prefix(h, "model.diffusion_model.joint_blocks.") || has_prefix(h, "joint_blocks."))
    return {"", "an SD3 transformer (joint_blocks.*)"};
  if (has_prefix(h, "model.diffusion_model.double_blocks.") || has_prefix(h, "double_blocks."))
    return {"", "a Flux transformer (double_blocks.*)"};
  if (has_prefix(h, "down_blocks.") || has_prefix(h, "unet.down_blocks."))
    return {"", "a diffusers-named UNet (down_blocks.*), which loads from a pipeline folder's unet/"};
  return {"", "no SD UNet (model.diffusion_model.input_blocks.*)"};
}

std::map<std::string, std::string> sd_single_file_tokenizers(const std::string& file, const std::string& family) {
  std::map<std::string, std::string> out;
  const auto beside = fs::path(file).parent_path();
  std::string fetched;
  try {
    if (const auto repo = example_repository(family); !repo.empty()) fetched = hub_model_folder(repo);
  } catch (const InputError&) {
    // No cache location (neither XDG_CACHE_HOME nor HOME): only the folders beside the file count.
  }
  for (const auto& name : tokenizer_folders(family)) {
    out[name] = "";
    if (is_clip_tokenizer(beside / name))
      out[name] = (beside / name).string();
    else if (!fetched.empty() && is_clip_tokenizer(fs::path(fetched) / name))
      out[name] = (fs::path(fetched) / name).string();
  }
  return out;
}

std::string sd_single_file_problem(const std::string& file, const std::string& value, const std::string& family) {
  const std::string setting = "pretrained_model_name_or_path '" + value + "'";
  if (family != "sd1x" && family != "sd2x" && family != "sdxl")
    return setting + " is a single file; model_family '" + family +
           "' trains from a diffusers pipeline folder (model_index.json, its denoiser, vae/, text encoders and "
           "tokenizers). Fetch one with `repa-train fetch " +
           example_repository(family) + " --family " + family + "`";
  if (fs::path(file).extension() != ".safetensors")
    return setting +
           " is a single file but not a .safetensors checkpoint (only .safetensors single files load; "
           "convert a .ckpt with diffusers or ComfyUI first)";
  SafetensorsHeader header;
  try {
    header = read_safetensors_header(file);
  } catch (const InputError& e) {
    return setting + ": " + e.what();
  }
  const auto found = sd_single_file_family(header);
  if (found.family.empty())
    return setting + " is not a Stable Diffusion single file in the LDM/SGM names: it holds " + found.evidence;
  if (found.family != family)
    return setting + ": this checkpoint is " + label(found.family) + ": " + found.evidence + "; model_family is " +
           family;
  for (const auto& [prefix, what] : std::vector<std::pair<std::string, std::string>>{
           {"model.diffusion_model.", "the UNet"},
           {"first_stage_model.", "the VAE"},
           {family == "sdxl" ? "conditioner.embedders.0." : "cond_stage_model.", "the text encoder"}})
    if (!has_prefix(header, prefix))
      return setting + " lacks " + what + " (" + prefix + "*): training from a single file needs the full checkpoint";
  std::string missing, folders, includes;
  for (const auto& [name, folder] : sd_single_file_tokenizers(file, family)) {
    if (!folder.empty()) continue;
    missing += (missing.empty() ? "" : " and ") + name + "/";
    folders += (folders.empty() ? "" : ", ") + (fs::path(file).parent_path() / name).string() + "/";
    includes += " --include '" + name + "/*'";
  }
  if (!missing.empty())
    return setting + " holds no tokenizer: model_family " + family + " needs " + missing +
           " (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json). Put them beside the file (" +
           folders + ") or fetch them with `repa-train fetch " + example_repository(family) + includes + "`";
  return "";
}

std::string sd_single_file_folder(const std::string& file) {
  const auto stem = fs::path(file).stem().string();
  return (fs::path(model_cache_root()) / ".single-file" / (stem + "-" + stable_hash(file_identity(file)))).string();
}

void set_sd_single_file_converter(SdSingleFileConverter converter) {
  converter_slot() = converter;
}

std::string ensure_sd_single_file_pipeline(const std::string& file, const std::string& family) {
  const auto folder = sd_single_file_folder(file);
  const auto record_path = fs::path(folder) / kConvertedRecord;
  if (fs::exists(record_path)) {
    std::ifstream in(record_path);
    std::ostringstream text;
    text << in.rdbuf();
    const auto record = try_parse_json_bounded(text.str());
    if (record.is_object() && record.value("family", "") == family) return folder;
  }
  if (!converter_slot())
    throw InputError("'" + file +
                     "' is a single file: converting it into a diffusers folder needs the training "
                     "worker (repa-train), which this program is not");
  // Convert beside the final folder and rename, so a killed conversion never leaves a folder that looks complete.
  const auto partial = folder + ".partial-" + std::to_string(::getpid());
  fs::remove_all(partial);
  fs::create_directories(partial);
  try {
    converter_slot()(file, family, partial);
    nlohmann::json record = {
        {"source", fs::absolute(file).string()}, {"family", family}, {"bytes", fs::file_size(file)}};
    std::ofstream out(fs::path(partial) / kConvertedRecord);
    out << record.dump(2) << "\n";
    if (!out) throw Error("cannot write '" + (fs::path(partial) / kConvertedRecord).string() + "'");
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw;
  }
  fs::remove_all(folder);
  fs::rename(partial, folder);
  return folder;
}

}  // namespace repa::config
