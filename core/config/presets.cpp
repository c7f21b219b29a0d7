#include "core/config/presets.h"

#include <algorithm>
#include <filesystem>

#include "core/base/error.h"
#include "core/config/loader.h"
#include "core/config/suggest.h"

namespace repa::config {
namespace {

Preset parse_preset(const std::string& name, const nlohmann::json& file, const std::string& origin) {
  if (!file.is_object() || !file.contains("config") || !file["config"].is_object())
    throw InputError("preset " + origin + ": expected an object with a \"config\" object");
  Preset preset;
  preset.name = name;
  preset.description = file.value("description", "");
  preset.notes = file.value("notes", "");
  preset.config = file["config"];
  return preset;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> list;
    for (const auto& embedded : embedded_presets())
      list.push_back(parse_preset(embedded.name, nlohmann::json::parse(embedded.text), embedded.name));
    std::sort(list.begin(), list.end(), [](const Preset& a, const Preset& b) { return a.name < b.name; });
    return list;
  }();
  return all;
}

Preset find_preset(const std::string& name_or_path) {
  for (const auto& preset : presets())
    if (preset.name == name_or_path) return preset;
  const std::filesystem::path path(name_or_path);
  if (path.extension() == ".json" && std::filesystem::exists(path))
    return parse_preset(path.stem().string(), read_json_file(name_or_path), name_or_path);
  std::vector<std::string> names;
  std::string list;
  for (const auto& preset : presets()) {
    names.push_back(preset.name);
    list += (list.empty() ? "" : ", ") + preset.name;
  }
  throw InputError("unknown preset '" + name_or_path + "'" + did_you_mean(name_or_path, names) + "; presets: " + list);
}

}  // namespace repa::config
