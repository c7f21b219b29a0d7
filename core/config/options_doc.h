// The registry as documentation: docs/options.md, `repa-train options` (text and JSON) and the presets list.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace repa::config {

std::string options_markdown();  // docs/options.md, byte for byte
std::string options_text();      // one line per option: key, type, default, range or choices
nlohmann::json options_json();   // every option with all its declared fields
std::string presets_text();      // one line per preset: name and description

}  // namespace repa::config
