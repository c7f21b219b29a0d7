#include "core/config/simpletuner_loader.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace repa::config {
namespace {

// Python's str.strip(): ASCII whitespace is enough for config values.
std::string stripped(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n\f\v");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n\f\v") - first + 1);
}

std::string lowered(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// The loader's legacy handlers that consume a key and emit nothing, whatever its value.
const std::set<std::string> kSkippedKeys = {
    "aspect_ratio_bucketing", "aspect_ratio_bucket_min", "aspect_ratio_bucket_max", "repeats",  // dataset keys
    "ez_model_type",          "__disabled_fields__",     "__active_tab__",                      // web interface
};

// cli_utils._is_truthy: what SimpleTuner's loader counts as false.
bool falsey(const nlohmann::json& value) {
  if (value.is_null()) return true;
  if (value.is_boolean()) return !value.get<bool>();
  if (value.is_number()) return value.get<double>() == 0.0;
  if (value.is_string()) {
    const std::string text = lowered(stripped(value.get<std::string>()));
    return text.empty() || text == "0" || text == "false" || text == "no" || text == "off" || text == "none";
  }
  return value.empty();  // Python's bool() of a list or a dict
}

std::string bare_key(const std::string& key) {
  return key.substr(std::min(key.size(), key.find_first_not_of('-')));
}

}  // namespace

std::optional<std::pair<std::string, nlohmann::json>> renamed_by_simpletuner_loader(const std::string& key,
                                                                                    const nlohmann::json& value) {
  const std::string bare = bare_key(key);
  if (bare == "save_total_limit" && !value.is_null() && value != "")
    return std::make_pair(std::string("checkpoints_total_limit"), value);
  if (bare == "vae_cache_preprocess" && !value.is_null() && falsey(value))
    return std::make_pair(std::string("vae_cache_ondemand"), nlohmann::json(true));
  return std::nullopt;
}

std::string dropped_by_simpletuner_loader(const std::string& key, const nlohmann::json& value) {
  const std::string bare = bare_key(key);
  if (kSkippedKeys.count(bare))
    return "SimpleTuner's config loader skips this key (a dataset or web-interface setting)";
  if (value.is_null()) return "SimpleTuner's config loader skips null values";
  if (renamed_by_simpletuner_loader(bare, value)) return "";
  if (bare == "save_total_limit") return "SimpleTuner's config loader skips an empty save_total_limit";
  if (bare == "vae_cache_preprocess")
    return "SimpleTuner's config loader passes on only a false vae_cache_preprocess (as vae_cache_ondemand)";
  if (value.is_string()) {
    const std::string text = stripped(value.get<std::string>());
    if (lowered(text) == "false") return "SimpleTuner's config loader drops the string \"false\" before its parser";
    if (text.empty()) return "SimpleTuner's config loader drops empty strings";
  }
  if (value.is_object()) return "SimpleTuner's config loader sets objects aside and never parses them";
  if (value.is_array()) {
    for (const auto& item : value)
      if (!item.is_string() || !stripped(item.get<std::string>()).empty()) return "";
    return "SimpleTuner's config loader drops lists without a non-empty item";
  }
  return "";
}

}  // namespace repa::config
