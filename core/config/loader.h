// Layering a run config: registry defaults < preset < file < --set overrides. Keys SimpleTuner registers
// but the studio does not use are kept as given, for export.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/registry.h"

namespace repa::config {

struct LoadReport {
  nlohmann::json config;           // resolved: every declared key present, "studio" object complete
  std::vector<Problem> problems;   // unknown keys, wrong types, ranges, choices, conflicts; RunError: no native run
  std::vector<Problem> warnings;   // keys SimpleTuner's loader would drop, options the studio's trainer ignores
  std::vector<std::string> notes;  // information: aliases renamed, SimpleTuner keys the studio ignores
};

// Every declared option at its default: top-level SimpleTuner keys plus the complete "studio" object.
nlohmann::json default_config();

// Like resolve_json, but returns the problems instead of throwing. `source` names the file in messages.
LoadReport load_config(const nlohmann::json& user_config, const std::string& preset,
                       const std::vector<std::string>& overrides);

// Reads a JSON file (InputError naming the file when it cannot be read or parsed, holds a NUL byte, nests
// deeper than kMaxJsonDepth or has a number outside double's range).
nlohmann::json read_json_file(const std::string& path);
// The same for a run config: the file must hold a JSON object (null, a list or a number is refused).
nlohmann::json read_config_file(const std::string& path);

// Keys of a resolved config that SimpleTuner registers but the studio does not use.
std::vector<std::string> ignored_simpletuner_keys(const nlohmann::json& resolved);

// One message listing every problem, for InputError.
std::string format_problems(const std::vector<Problem>& problems, const std::string& source);
// "key: message", one problem or warning as a line of text.
std::string format_problem(const Problem& problem);

}  // namespace repa::config
