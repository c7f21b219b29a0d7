#include "core/config/registry.h"

#include <algorithm>
#include <map>

#include "core/config/option_builder.h"
#include "core/config/simpletuner_fields.h"

namespace repa::config {
namespace {

std::string strip_dashes(const std::string& key) {
  std::size_t start = 0;
  while (start < key.size() && key[start] == '-') ++start;
  return key.substr(start);
}

std::string choice_text(const nlohmann::json& choice) {
  return choice.is_string() ? choice.get<std::string>() : choice.dump();
}

// Choice labels and model families come from SimpleTuner's registry data, not from the declarations.
void add_simpletuner_data(std::vector<OptionSpec>& all) {
  std::map<std::string, OptionSpec*> by_key;
  for (OptionSpec& spec : all)
    if (spec.simpletuner) by_key[spec.key] = &spec;
  for (const SimpleTunerChoiceLabel& entry : simpletuner_choice_labels()) {
    const auto found = by_key.find(entry.field);
    if (found == by_key.end()) continue;
    OptionSpec& spec = *found->second;
    spec.choice_labels.resize(spec.choices.size());
    for (std::size_t i = 0; i < spec.choices.size(); ++i)
      if (choice_text(spec.choices[i]) == entry.value) spec.choice_labels[i] = entry.label;
  }
  for (const SimpleTunerFamilies& entry : simpletuner_model_specific()) {
    const auto found = by_key.find(entry.field);
    if (found == by_key.end()) continue;
    std::string current;
    for (const char* p = entry.families;; ++p) {
      if (*p == ' ' || *p == '\0') {
        if (!current.empty()) found->second->families.push_back(current);
        current.clear();
        if (*p == '\0') break;
      } else {
        current += *p;
      }
    }
  }
}

std::vector<OptionSpec> build_registry() {
  std::vector<OptionSpec> all = detail::loss_options();
  for (auto part : {detail::training_options(), detail::noise_options(), detail::studio_options()})
    all.insert(all.end(), part.begin(), part.end());
  add_simpletuner_data(all);
  return all;
}

// Splits "--a --b" into its names without dashes.
std::vector<std::string> split_aliases(const char* text) {
  std::vector<std::string> names;
  std::string current;
  for (const char* p = text;; ++p) {
    if (*p == ' ' || *p == '\0') {
      if (!current.empty()) names.push_back(strip_dashes(current));
      current.clear();
      if (*p == '\0') break;
    } else {
      current += *p;
    }
  }
  return names;
}

double as_number(const nlohmann::json& value) {
  return value.is_number() ? value.get<double>() : 0.0;
}

}  // namespace

bool rule_holds(const VisibilityRule& rule, const nlohmann::json& config) {
  const nlohmann::json value = config_value(config, rule.field);
  if (rule.op == "equals") return value == rule.value;
  if (rule.op == "not_equals") return value != rule.value;
  if (rule.op == "greater_than")
    return value.is_number() && rule.value.is_number() && as_number(value) > as_number(rule.value);
  if (rule.op == "is_set") return !value.is_null() && value != "";
  if (rule.op == "in") {
    for (const auto& candidate : rule.value)
      if (candidate == value) return true;
    return false;
  }
  return true;
}

const std::vector<OptionSpec>& registry() {
  static const std::vector<OptionSpec> options = build_registry();
  return options;
}

const OptionSpec* find_option(const std::string& key) {
  static const std::map<std::string, const OptionSpec*> by_name = [] {
    std::map<std::string, const OptionSpec*> names;
    for (const auto& spec : registry()) {
      names[spec.key] = &spec;
      for (const auto& alias : spec.aliases) names[alias] = &spec;
    }
    return names;
  }();
  const auto found = by_name.find(strip_dashes(key));
  return found == by_name.end() ? nullptr : found->second;
}

bool applies_to_family(const OptionSpec& spec, const nlohmann::json& config) {
  if (spec.families.empty()) return true;
  const nlohmann::json family = config_value(config, "model_family");
  if (!family.is_string() || family.get<std::string>().empty()) return true;  // the studio's own backbones
  return std::find(spec.families.begin(), spec.families.end(), family.get<std::string>()) != spec.families.end();
}

bool is_visible(const OptionSpec& spec, const nlohmann::json& config) {
  if (!applies_to_family(spec, config)) return false;
  for (const auto& rule : spec.visible_when) {
    if (rule.action != "show") continue;
    if (!rule_holds(rule, config)) return false;
    const OptionSpec* parent = find_option(rule.field);
    if (parent && parent != &spec && !applies_to_family(*parent, config)) return false;
  }
  return true;
}

std::string choice_label(const OptionSpec& spec, const nlohmann::json& choice) {
  for (std::size_t i = 0; i < spec.choices.size() && i < spec.choice_labels.size(); ++i)
    if (spec.choices[i] == choice && !spec.choice_labels[i].empty()) return spec.choice_labels[i];
  return choice_text(choice);
}

bool is_enabled(const OptionSpec& spec, const nlohmann::json& config) {
  for (const auto& rule : spec.visible_when)
    if (rule.action == "enable" && !rule_holds(rule, config)) return false;
  return true;
}

const char* type_name(OptionType type) {
  switch (type) {
    case OptionType::Bool:
      return "bool";
    case OptionType::Int:
      return "int";
    case OptionType::Float:
      return "float";
    case OptionType::String:
      return "string";
    case OptionType::Choice:
      return "choice";
    case OptionType::Path:
      return "path";
    case OptionType::Json:
      return "json";
  }
  return "?";
}

nlohmann::json config_value(const nlohmann::json& config, const std::string& key) {
  if (key.rfind("studio.", 0) == 0) {
    const auto studio = config.find("studio");
    const std::string name = key.substr(7);
    if (studio != config.end() && studio->is_object() && studio->contains(name)) return (*studio)[name];
  } else if (config.is_object() && config.contains(key)) {
    return config[key];
  }
  if (const auto* spec = find_option(key)) return spec->default_value;
  if (const auto* field = find_simpletuner_field(key)) return nlohmann::json::parse(field->default_json);
  return nullptr;
}

const SimpleTunerField* find_simpletuner_field(const std::string& key) {
  static const std::map<std::string, const SimpleTunerField*> by_name = [] {
    std::map<std::string, const SimpleTunerField*> names;
    for (const auto& field : simpletuner_fields()) {
      names[field.name] = &field;
      if (*field.arg_name) names[strip_dashes(field.arg_name)] = &field;
      for (const auto& alias : split_aliases(field.aliases)) names[alias] = &field;
    }
    return names;
  }();
  const auto found = by_name.find(strip_dashes(key));
  return found == by_name.end() ? nullptr : found->second;
}

bool accepted_by_simpletuner_cli(const SimpleTunerField& field) {
  return std::string(field.arg_name).rfind("--", 0) == 0;
}

}  // namespace repa::config
