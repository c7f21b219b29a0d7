// Reading a run config that may not be fully resolved: a missing or null key takes the default (SimpleTuner's
// `value or default`), numbers may be strings. Studio settings live under "studio".
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace repa::train {

double number_or(const nlohmann::json& config, const std::string& key, double fallback);
int64_t integer_or(const nlohmann::json& config, const std::string& key, int64_t fallback);
bool flag_or(const nlohmann::json& config, const std::string& key, bool fallback);
std::string text_or(const nlohmann::json& config, const std::string& key, const std::string& fallback);

const nlohmann::json& studio_settings(const nlohmann::json& config);  // config["studio"] or an empty object

}  // namespace repa::train
