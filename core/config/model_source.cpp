#include "core/config/model_source.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::config {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string whole_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// diffusers' component folders per model_family (the pipelines' model_index.json entries the studio reads).
const std::map<std::string, std::vector<std::string>>& family_table() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"sd1x", {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"sd2x", {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"sdxl", {"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"}},
      {"kolors", {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"sd3",
       {"transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2",
        "tokenizer_3", "scheduler"}},
      {"flux", {"transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"}},
      {"flux2", {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"chroma", {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"pixart", {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"sana", {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"auraflow", {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"lumina2", {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}},
      {"hidream",
       {"transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2",
        "tokenizer_3", "scheduler"}},
  };
  return table;
}

const std::vector<std::string>& all_components() {
  static const std::vector<std::string> all = {
      "unet",           "transformer", "vae",         "text_encoder", "text_encoder_2", "text_encoder_3",
      "text_encoder_4", "tokenizer",   "tokenizer_2", "tokenizer_3",  "tokenizer_4",    "scheduler"};
  return all;
}


}  // namespace

bool is_hub_repo_id(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || text.find('/', slash + 1) != std::string::npos) return false;
  for (const auto& part : {text.substr(0, slash), text.substr(slash + 1)}) {
    if (part.empty() || part.size() > 96 || part.front() == '.' || part.front() == '-') return false;
    for (const unsigned char c : part)
      if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::vector<std::string> hub_families() {
  std::vector<std::string> names;
  for (const auto& item : family_table()) names.push_back(item.first);
  return names;
}

std::vector<std::string> family_components(const std::string& family) {
  if (family.empty()) return all_components();
  const auto it = family_table().find(family);
  if (it == family_table().end()) {
    std::string known;
    for (const auto& name : hub_families()) known += (known.empty() ? "" : ", ") + name;
    throw InputError("model family '" + family + "' has no Hub file list (known: " + known +
                     "); name the files with --include");
  }
  return it->second;
}

std::string model_cache_root() {
  fs::path base;
  if (const auto xdg = env("XDG_CACHE_HOME"); !xdg.empty()) {
    base = xdg;
  } else if (const auto home = env("HOME"); !home.empty()) {
    base = fs::path(home) / ".cache";
  } else {
    throw InputError("cannot locate the model cache: neither XDG_CACHE_HOME nor HOME is set");
  }
  return (base / "repa-studio" / "models").string();
}

std::string hub_model_folder(const std::string& repo) {
  if (!is_hub_repo_id(repo)) throw InputError("'" + repo + "' is not a Hub repository id (owner/name)");
  return (fs::path(model_cache_root()) / repo).string();
}

std::string resolve_model_source(const std::string& value, const std::string& key, const std::string& family) {
  if (value.empty() || fs::exists(value) || !is_hub_repo_id(value)) return value;
  const auto folder = hub_model_folder(value);
  const auto record = fs::path(folder) / kHubFetchRecord;
  const auto json = try_parse_json_bounded(fs::exists(record) ? whole_file(record) : std::string());
  if (json.is_object() && json.value("complete", false)) return folder;
  // A mistyped relative path looks like a repo id too, so the message says both.
  throw InputError(
      key + " '" + value + "' is not a file or folder here, and as a Hub repository it is not fetched yet (" + folder +
      (fs::exists(record) ? " holds an unfinished fetch" : " is missing") + "); download it with `repa-train fetch " +
      value + (family.empty() ? "" : " --family " + family) + "`");
}

nlohmann::json read_model_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open model config '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  auto config = parse_json_bounded(text.str(), "model config '" + path + "'");
  if (!config.is_object()) throw InputError("model config '" + path + "' is not a JSON object");
  return config;
}

nlohmann::json read_model_folder_config(const std::string& folder, const std::string& what) {
  const fs::path path = fs::path(folder) / "config.json";
  if (!fs::exists(path)) throw InputError("'" + folder + "' has no config.json (" + what + ")");
  return read_model_config_file(path.string());
}

}  // namespace repa::config
