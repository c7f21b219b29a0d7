// Reading diffusers' config.json files: typed values with defaults, per-block lists that may be given as
// one number, and clear errors naming the key for wrong types or values this project does not build.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::models::diffusers {

// A key that is missing or null reads as the fallback; a value of the wrong type throws InputError.
int64_t config_int(const nlohmann::json& config, const std::string& key, int64_t fallback);
double config_double(const nlohmann::json& config, const std::string& key, double fallback);
bool config_bool(const nlohmann::json& config, const std::string& key, bool fallback);
std::string config_string(const nlohmann::json& config, const std::string& key, const std::string& fallback);
bool config_has(const nlohmann::json& config, const std::string& key);  // present and not null

std::vector<int64_t> config_ints(const nlohmann::json& config, const std::string& key,
                                 const std::vector<int64_t>& fallback);
std::vector<std::string> config_strings(const nlohmann::json& config, const std::string& key,
                                        const std::vector<std::string>& fallback);

// A per-block setting given either as one number (used for every block) or as a list of `count` numbers.
std::vector<int64_t> config_per_block_ints(const nlohmann::json& config, const std::string& key, std::size_t count,
                                           int64_t fallback);
std::vector<bool> config_per_block_bools(const nlohmann::json& config, const std::string& key, std::size_t count,
                                         bool fallback);

// Throws InputError when `key` is set to anything but one of `supported` (missing or null is accepted).
void config_require_one_of(const nlohmann::json& config, const std::string& key,
                           const std::vector<nlohmann::json>& supported);

// Reads a config.json file; InputError naming the file when it is missing or not a JSON object.
nlohmann::json read_config_file(const std::string& path);

}  // namespace repa::models::diffusers
