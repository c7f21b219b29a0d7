#include "core/align/config_values.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "core/base/error.h"

namespace repa::align::config_values {
namespace {

const nlohmann::json* find(const nlohmann::json& config, const std::string& key) {
  if (!config.is_object()) return nullptr;
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] void wrong_type(const std::string& key, const nlohmann::json& value, const char* expected) {
  throw InputError("config key '" + key + "': expected " + expected + ", got " + value.dump());
}

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

}  // namespace

std::optional<double> number(const nlohmann::json& config, const std::string& key) {
  const auto* value = find(config, key);
  if (!value) return std::nullopt;
  if (value->is_number()) return value->get<double>();
  if (value->is_boolean()) return value->get<bool>() ? 1.0 : 0.0;
  if (value->is_string()) {
    const std::string s = trimmed(value->get<std::string>());
    if (s.empty() || lowered(s) == "none" || lowered(s) == "null") return std::nullopt;
    char* end = nullptr;
    const double parsed = std::strtod(s.c_str(), &end);
    if (end && *end == '\0') return parsed;
  }
  wrong_type(key, *value, "a number");
}

std::optional<int64_t> integer(const nlohmann::json& config, const std::string& key) {
  const auto* value = find(config, key);
  if (!value) return std::nullopt;
  if (value->is_number_integer()) return value->get<int64_t>();
  const auto parsed = number(config, key);
  if (!parsed) return std::nullopt;
  if (!std::isfinite(*parsed)) wrong_type(key, *value, "a whole number");
  return static_cast<int64_t>(std::trunc(*parsed));
}

std::optional<bool> flag(const nlohmann::json& config, const std::string& key) {
  const auto* value = find(config, key);
  if (!value) return std::nullopt;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_number()) return value->get<double>() != 0.0;
  if (value->is_string()) {
    const std::string s = lowered(trimmed(value->get<std::string>()));
    if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "0" || s == "no" || s == "off" || s.empty()) return false;
  }
  wrong_type(key, *value, "true or false");
}

std::optional<std::string> text(const nlohmann::json& config, const std::string& key) {
  const auto* value = find(config, key);
  if (!value) return std::nullopt;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number()) return value->dump();
  wrong_type(key, *value, "text");
}

}  // namespace repa::align::config_values
