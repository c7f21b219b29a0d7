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

}  // namespace

std::string dropped_by_simpletuner_loader(const std::string& key, const nlohmann::json& value) {
  std::string bare = key;
  bare.erase(0, bare.find_first_not_of('-'));
  if (kSkippedKeys.count(bare))
    return "SimpleTuner's config loader skips this key (a dataset or web-interface setting)";
  if (value.is_null()) return "SimpleTuner's config loader skips null values";
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
