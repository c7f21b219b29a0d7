#include "core/config/trainer_support.h"

#include "core/config/values.h"

namespace repa::config {

const char* const kExportOnlyText = "exported to SimpleTuner; not used by the studio's trainer";

bool in_use(const OptionSpec& spec, const nlohmann::json& config) {
  if (!is_visible(spec, config) || !is_enabled(spec, config)) return false;
  const nlohmann::json value = config_value(config, spec.key);
  if (spec.type == OptionType::Bool) {
    const auto on = [](const nlohmann::json& v) { return v == true; };
    return on(value) != on(spec.default_value);
  }
  return value != spec.default_value;
}

bool honoured_by_trainer(const OptionSpec& spec, const nlohmann::json& config) {
  switch (spec.trainer) {
    case TrainerSupport::Honoured:
      return true;
    case TrainerSupport::ExportOnly:
    case TrainerSupport::Refused:
      return false;
    case TrainerSupport::Conditional:
      for (const auto& rule : spec.honoured_when)
        if (!rule_holds(rule, config)) return false;
      return true;
  }
  return true;
}

std::string describe_rules(const std::vector<VisibilityRule>& rules) {
  std::string text;
  for (const auto& rule : rules) {
    if (!text.empty()) text += " and ";
    text += rule.field;
    if (rule.op == "equals")
      text += " is " + rule.value.dump();
    else if (rule.op == "not_equals")
      text += " is not " + rule.value.dump();
    else if (rule.op == "greater_than")
      text += " is above " + rule.value.dump();
    else if (rule.op == "is_set")
      text += " is set";
    else {
      std::string list;
      for (const auto& value : rule.value) list += (list.empty() ? "" : ", ") + value.dump();
      text += " is one of " + list;
    }
  }
  return text;
}

std::vector<IgnoredOption> ignored_by_trainer(const nlohmann::json& config) {
  std::vector<IgnoredOption> ignored;
  for (const auto& spec : registry()) {
    if (spec.trainer == TrainerSupport::Honoured || !in_use(spec, config) || honoured_by_trainer(spec, config))
      continue;
    IgnoredOption option{spec.key, config_value(config, spec.key), kExportOnlyText, false};
    if (spec.trainer == TrainerSupport::Conditional)
      option.reason =
          "exported to SimpleTuner; the studio's trainer uses it only when " + describe_rules(spec.honoured_when);
    if (spec.trainer == TrainerSupport::Refused)
      option.reason = "exported to SimpleTuner; not used by the studio's trainer, which " + spec.refusal +
                      ", so a native run is refused";
    option.refused = spec.trainer == TrainerSupport::Refused;
    ignored.push_back(std::move(option));
  }
  return ignored;
}

std::string describe(const IgnoredOption& option) {
  return option.key + " = " + describe_value(option.value) + ": " + option.reason;
}

nlohmann::json to_json(const std::vector<IgnoredOption>& options) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& option : options)
    list.push_back(
        {{"key", option.key}, {"value", option.value}, {"reason", option.reason}, {"refused", option.refused}});
  return list;
}

}  // namespace repa::config
