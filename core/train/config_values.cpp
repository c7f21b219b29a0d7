#include "core/train/config_values.h"

#include "core/base/error.h"

namespace repa::train {

namespace {
const nlohmann::json* find(const nlohmann::json& config, const std::string& key) {
  if (!config.is_object()) return nullptr;
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return nullptr;
  return &*it;
}
}  // namespace

double number_or(const nlohmann::json& config, const std::string& key, double fallback) {
  const auto* v = find(config, key);
  if (!v) return fallback;
  if (v->is_number()) return v->get<double>();
  if (v->is_boolean()) return v->get<bool>() ? 1.0 : 0.0;
  if (v->is_string()) {
    try {
      return std::stod(v->get<std::string>());
    } catch (const std::exception&) {
    }
  }
  throw InputError(key + " must be a number, got " + v->dump());
}

int64_t integer_or(const nlohmann::json& config, const std::string& key, int64_t fallback) {
  return static_cast<int64_t>(number_or(config, key, static_cast<double>(fallback)));
}

bool flag_or(const nlohmann::json& config, const std::string& key, bool fallback) {
  const auto* v = find(config, key);
  if (!v) return fallback;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_number()) return v->get<double>() != 0.0;
  if (v->is_string()) {
    const auto s = v->get<std::string>();
    if (s == "true" || s == "True" || s == "1") return true;
    if (s == "false" || s == "False" || s == "0" || s.empty()) return false;
  }
  throw InputError(key + " must be true or false, got " + v->dump());
}

std::string text_or(const nlohmann::json& config, const std::string& key, const std::string& fallback) {
  const auto* v = find(config, key);
  if (!v) return fallback;
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

const nlohmann::json& studio_settings(const nlohmann::json& config) {
  static const nlohmann::json empty = nlohmann::json::object();
  const auto* v = find(config, "studio");
  return v && v->is_object() ? *v : empty;
}

}  // namespace repa::train
