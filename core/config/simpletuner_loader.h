// What SimpleTuner's JSON config loader (helpers/configuration/json_file.py → cli_utils.mapping_to_cli_args)
// does with a key before its argument parser sees it. A key SimpleTuner no longer registers fails its parser,
// unless the loader drops the value first; such a key is only a warning here, as it is harmless there.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace repa::config {

// Why SimpleTuner's loader never hands `key` to its parser, or "" when it does. The loader drops: null; a
// string that is "false" in any case, or empty, once spaces are trimmed (a "true" string becomes a bare flag,
// a JSON false becomes --key=false: both reach the parser); an object (set aside, never parsed); a list whose
// items are all empty strings; and a few dataset-level and web-interface keys whatever their value.
std::string dropped_by_simpletuner_loader(const std::string& key, const nlohmann::json& value);

// The loader's legacy handlers that pass a key on under another name: save_total_limit becomes
// checkpoints_total_limit; a false vae_cache_preprocess becomes vae_cache_ondemand = true (a true one is
// dropped, see above). Nothing for any other key, or for a value the handler drops.
std::optional<std::pair<std::string, nlohmann::json>> renamed_by_simpletuner_loader(const std::string& key,
                                                                                    const nlohmann::json& value);

}  // namespace repa::config
