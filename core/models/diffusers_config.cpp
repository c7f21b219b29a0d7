#include "core/models/diffusers_config.h"

#include <fstream>
#include <sstream>

#include "core/base/error.h"
#include "core/config/model_source.h"

namespace repa::models::diffusers {
namespace {

[[noreturn]] void wrong_type(const std::string& key, const char* expected, const nlohmann::json& value) {
  throw InputError("config key '" + key + "': expected " + expected + ", got " + value.dump());
}

int64_t as_int(const std::string& key, const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // diffusers configs sometimes write integral floats (e.g. 1.0); anything else is a mistake.
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()))) {
    return static_cast<int64_t>(v.get<double>());
  }
  wrong_type(key, "an integer", v);
}

}  // namespace

bool config_has(const nlohmann::json& config, const std::string& key) {
  return config.is_object() && config.contains(key) && !config.at(key).is_null();
}

int64_t config_int(const nlohmann::json& config, const std::string& key, int64_t fallback) {
  return config_has(config, key) ? as_int(key, config.at(key)) : fallback;
}

double config_double(const nlohmann::json& config, const std::string& key, double fallback) {
  if (!config_has(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_number()) wrong_type(key, "a number", v);
  return v.get<double>();
}

bool config_bool(const nlohmann::json& config, const std::string& key, bool fallback) {
  if (!config_has(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_boolean()) wrong_type(key, "true or false", v);
  return v.get<bool>();
}

std::string config_string(const nlohmann::json& config, const std::string& key, const std::string& fallback) {
  if (!config_has(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_string()) wrong_type(key, "a string", v);
  return v.get<std::string>();
}

std::vector<int64_t> config_ints(const nlohmann::json& config, const std::string& key,
                                 const std::vector<int64_t>& fallback) {
  if (!config_has(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_array()) wrong_type(key, "a list of integers", v);
  std::vector<int64_t> out;
  for (const auto& item : v) out.push_back(as_int(key, item));
  return out;
}

std::vector<std::string> config_strings(const nlohmann::json& config, const std::string& key,
                                        const std::vector<std::string>& fallback) {
  if (!config_has(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_array()) wrong_type(key, "a list of strings", v);
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.is_string()) wrong_type(key, "a list of strings", v);
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<int64_t> config_per_block_ints(const nlohmann::json& config, const std::string& key, std::size_t count,
                                           int64_t fallback) {
  if (!config_has(config, key)) return std::vector<int64_t>(count, fallback);
  const auto& v = config.at(key);
  if (!v.is_array()) return std::vector<int64_t>(count, as_int(key, v));
  auto out = config_ints(config, key, {});
  if (out.size() != count) {
    throw InputError("config key '" + key + "': expected one value per block (" + std::to_string(count) +
                     "), got " + std::to_string(out.size()));
  }
  return out;
}

std::vector<bool> config_per_block_bools(const nlohmann::json& config, const std::string& key, std::size_t count,
                                         bool fallback) {
  if (!config_has(config, key)) return std::vector<bool>(count, fallback);
  const auto& v = config.at(key);
  if (v.is_boolean()) return std::vector<bool>(count, v.get<bool>());
  if (!v.is_array() || v.size() != count) {
    throw InputError("config key '" + key + "': expected true/false or a list of " + std::to_string(count) +
                     " of them, got " + v.dump());
  }
  std::vector<bool> out;
  for (const auto& item : v) {
    if (!item.is_boolean()) wrong_type(key, "a list of true/false", v);
    out.push_back(item.get<bool>());
  }
  return out;
}

void config_require_one_of(const nlohmann::json& config, const std::string& key,
                           const std::vector<nlohmann::json>& supported) {
  if (!config_has(config, key)) return;
  const auto& v = config.at(key);
  for (const auto& s : supported) {
    if (v == s) return;
  }
  std::string list;
  for (const auto& s : supported) list += (list.empty() ? "" : ", ") + s.dump();
  throw InputError("config key '" + key + "' = " + v.dump() + " is not supported (supported: " +
                   (list.empty() ? std::string("unset") : list) + ")");
}

nlohmann::json read_config_file(const std::string& path) { return config::read_model_config_file(path); }

}  // namespace repa::models::diffusers
