// The option registry: one declaration per setting (key, type, default, range or choices, place in the
// panels, label, help, visibility rule). Loading, --set, validation, `repa-train options`, the GUI panels
// and docs/options.md are all generated from it. No LibTorch here: this module compiles fast.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace repa::config {

enum class OptionType { Bool, Int, Float, String, Choice, Path, Json };

struct VisibilityRule {
  std::string field;  // a top-level key, or "studio.<name>"
  std::string op;     // "equals" "not_equals" "greater_than" "is_set" "in" (value is then a list)
  nlohmann::json value;
  std::string action = "show";  // "show": hidden otherwise; "enable": shown but greyed out otherwise
};

// Whether the studio's own trainer acts on an option. A SimpleTuner export carries the option either way.
enum class TrainerSupport {
  Honoured,     // the trainer reads it
  ExportOnly,   // kept for SimpleTuner; the trainer never reads it (a warning while it is in use)
  Refused,      // kept for SimpleTuner, but in use it changes what would be trained: a native run is refused
  Conditional,  // honoured while every rule of `honoured_when` holds, otherwise not applicable (a warning)
};

struct OptionSpec {
  std::string key;  // SimpleTuner name ("crepa_lambda") or "studio.<name>"
  OptionType type = OptionType::String;
  nlohmann::json default_value;  // null = unset
  std::optional<double> min, max;
  std::vector<nlohmann::json> choices;
  std::string tab, section, subsection;
  double order = 0;
  std::string label, help;                   // label = SimpleTuner's ui_label for its fields
  std::vector<VisibilityRule> visible_when;  // all must hold
  bool simpletuner = true;                   // SimpleTuner registers it
  std::vector<std::string> aliases;          // older spellings, without the leading "--"
  // SimpleTuner checks some ranges only while the option is in use (xm_candidate_count's minimum of 2 holds
  // only with xm_enabled); such ranges are checked only while the option is visible.
  bool range_only_when_visible = false;
  TrainerSupport trainer = TrainerSupport::Honoured;
  std::vector<VisibilityRule> honoured_when;  // Conditional: all must hold
  std::string refusal;                        // Refused: what the studio's trainer would train instead
  // From SimpleTuner's registry data (tests/fixtures/simpletuner/options.json), filled in for its fields:
  std::vector<std::string> choice_labels;  // the label shown per choice ("Linear Decay"), "" where it has none
  std::vector<std::string> families;       // model_specific: shown only while model_family is one of these
};

const std::vector<OptionSpec>& registry();
const OptionSpec* find_option(const std::string& key);  // accepts aliases and a leading "--"
// Visible: its own rules hold, it applies to the config's model family (any family while none is chosen), and
// so does every field its rules depend on (TwinFlow's step count goes with TwinFlow).
bool is_visible(const OptionSpec& spec, const nlohmann::json& config);
bool applies_to_family(const OptionSpec& spec, const nlohmann::json& config);
// The text a panel shows for a choice: SimpleTuner's label where it has one, else the value itself.
std::string choice_label(const OptionSpec& spec, const nlohmann::json& choice);
bool is_enabled(const OptionSpec& spec, const nlohmann::json& config);  // the "enable" rules
bool rule_holds(const VisibilityRule& rule, const nlohmann::json& config);

const char* type_name(OptionType type);  // "bool", "int", "float", "string", "choice", "path", "json"

// The value a key has in a config: "studio.x" reads config["studio"]["x"]; a key the config lacks reads
// the registry's default, then SimpleTuner's default for keys only SimpleTuner knows.
nlohmann::json config_value(const nlohmann::json& config, const std::string& key);

enum class Severity {
  Error,     // the config is wrong: nothing runs or exports it
  RunError,  // SimpleTuner runs it, the studio's trainer cannot (it would train something else): exports only
  Warning,   // reported, nothing blocked
};

struct Problem {
  std::string key;
  std::string message;
  Severity severity = Severity::Error;
};
// What a resolved config is for: a native run stops at RunError problems, an export does not.
enum class Purpose { Run, Export };
bool blocks(const Problem& problem, Purpose purpose);  // Error always, RunError for a run, Warning never

std::vector<Problem> validate(const nlohmann::json& resolved_config);  // every problem at once, warnings too

// defaults < preset < file < overrides ("key=value"); throws InputError listing every problem that blocks
// `purpose` (warnings are the caller's to show: load_config returns them).
nlohmann::json resolve_config(const std::string& file_path, const std::string& preset,
                              const std::vector<std::string>& overrides, Purpose purpose = Purpose::Run);
nlohmann::json resolve_json(const nlohmann::json& user_config, const std::string& preset = "",
                            const std::vector<std::string>& overrides = {}, Purpose purpose = Purpose::Run);

}  // namespace repa::config
