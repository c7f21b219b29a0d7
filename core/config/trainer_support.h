// Which options the studio's own trainer acts on (OptionSpec::trainer) and which options a config turns on
// that the trainer ignores: validate() warns about them (or refuses a native run), the worker's run_started
// event lists them, the window marks them. A SimpleTuner export carries every one of them unchanged.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/registry.h"

namespace repa::config {

// The window's badge text and the reason given for an export-only option.
extern const char* const kExportOnlyText;  // "exported to SimpleTuner; not used by the studio's trainer"

// The option is in use: its feature is on (every show and enable rule holds under `config`) and its value
// differs from the default. For booleans null and false are both "off", as SimpleTuner's flags read them.
bool in_use(const OptionSpec& spec, const nlohmann::json& config);

// The studio's trainer acts on the option under `config` (a Conditional option: while its rules hold).
bool honoured_by_trainer(const OptionSpec& spec, const nlohmann::json& config);

// "studio.teacher_input is \"vae_decode\"": the condition of a Conditional option, in words.
std::string describe_rules(const std::vector<VisibilityRule>& rules);

struct IgnoredOption {
  std::string key;
  nlohmann::json value;
  std::string reason;    // kExportOnlyText, or why it does not apply ("used only when ...")
  bool refused = false;  // TrainerSupport::Refused: a native run stops
};

// Every option in use that the trainer ignores under `config`, in registry order.
std::vector<IgnoredOption> ignored_by_trainer(const nlohmann::json& config);

// "xm_enabled = true: exported to SimpleTuner; not used by the studio's trainer"
std::string describe(const IgnoredOption& option);
// [{"key", "value", "reason", "refused"}, ...] as in the worker's run_started event (docs/events.md).
nlohmann::json to_json(const std::vector<IgnoredOption>& options);

}  // namespace repa::config
