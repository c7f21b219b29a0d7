// Reading single values out of a flat SimpleTuner-style config with SimpleTuner's conventions: a missing
// key and null both mean "not given", numbers may arrive as strings ("1e-4"), booleans as "true"/"false".
// Every wrong type is an InputError naming the key and the value.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace repa::align::config_values {

// The number under `key`, or nothing when the key is missing or null.
std::optional<double> number(const nlohmann::json& config, const std::string& key);
// The integer under `key` (a fractional value is truncated, as Python's int() does), or nothing.
std::optional<int64_t> integer(const nlohmann::json& config, const std::string& key);
// The boolean under `key`, or nothing.
std::optional<bool> flag(const nlohmann::json& config, const std::string& key);
// The text under `key`, or nothing.
std::optional<std::string> text(const nlohmann::json& config, const std::string& key);

}  // namespace repa::align::config_values
