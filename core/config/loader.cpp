#include "core/config/loader.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/presets.h"
#include "core/config/simpletuner_fields.h"
#include "core/config/simpletuner_loader.h"
#include "core/config/suggest.h"
#include "core/config/values.h"

namespace repa::config {
namespace {

std::string strip_dashes(const std::string& key) {
  std::size_t start = 0;
  while (start < key.size() && key[start] == '-') ++start;
  return key.substr(start);
}

// Everything a key could have meant: declared keys, SimpleTuner's names, flags and aliases.
const std::vector<std::string>& known_top_level_names() {
  static const std::vector<std::string> names = [] {
    std::set<std::string> all;
    for (const auto& spec : registry())
      if (spec.simpletuner) all.insert(spec.key);
    for (const auto& field : simpletuner_fields()) {
      all.insert(field.name);
      if (*field.arg_name) all.insert(strip_dashes(field.arg_name));
    }
    return std::vector<std::string>(all.begin(), all.end());
  }();
  return names;
}

std::vector<std::string> studio_names() {
  std::vector<std::string> names;
  for (const auto& spec : registry())
    if (!spec.simpletuner) names.push_back(spec.key.substr(7));
  return names;
}

class Layering {
 public:
  explicit Layering(LoadReport& report) : report_(report) {}

  void apply(const nlohmann::json& layer, const std::string& origin) {
    if (layer.is_null()) return;  // an empty layer
    if (!layer.is_object()) {
      report_.problems.push_back({"", origin + ": expected a JSON object of options, got " + describe_value(layer)});
      return;
    }
    given_.clear();
    for (const auto& [raw_key, value] : layer.items()) {
      const std::string key = strip_dashes(raw_key);
      if (key == "studio") {
        apply_studio(value, origin);
      } else if (key.rfind("studio.", 0) == 0) {
        apply_studio_key(key.substr(7), value);
      } else {
        apply_key(key, value);
      }
    }
  }

 private:
  void apply_studio(const nlohmann::json& studio, const std::string& origin) {
    if (studio.is_null()) return;
    if (!studio.is_object()) {
      report_.problems.push_back({"studio", origin + ": \"studio\" must be an object, got " + describe_value(studio)});
      return;
    }
    for (const auto& [name, value] : studio.items()) apply_studio_key(name, value);
  }

  void apply_studio_key(const std::string& name, const nlohmann::json& value) {
    const OptionSpec* spec = find_option("studio." + name);
    if (spec == nullptr) {
      report_.problems.push_back({"studio." + name, "unknown studio option" + did_you_mean(name, studio_names())});
      return;
    }
    set(*spec, value, "studio." + name);
  }

  void apply_key(const std::string& key, const nlohmann::json& value) {
    const OptionSpec* spec = find_option(key);
    if (spec != nullptr && spec->simpletuner) {
      if (key != spec->key)
        report_.notes.push_back("'" + key + "' is SimpleTuner's older name for '" + spec->key + "'; read as " +
                                spec->key);
      set(*spec, value, key);
      return;
    }
    if (find_simpletuner_field(key) != nullptr) {
      // SimpleTuner knows it, the studio does not use it: keep it unchanged for export. null = not given.
      if (!value.is_null()) report_.config[key] = value;
      return;
    }
    // SimpleTuner's loader still reads a few old keys under their new names.
    if (const auto renamed = renamed_by_simpletuner_loader(key, value)) {
      report_.notes.push_back("'" + key + "' = " + describe_value(value) + " is read by SimpleTuner's loader as " +
                              renamed->first + " = " + describe_value(renamed->second));
      apply_key(renamed->first, renamed->second);
      return;
    }
    // SimpleTuner accepts a key it no longer registers when its loader drops the value before parsing.
    const std::string dropped = dropped_by_simpletuner_loader(key, value);
    if (!dropped.empty()) {
      report_.warnings.push_back({key, "unknown option, ignored: " + dropped, Severity::Warning});
      return;
    }
    report_.problems.push_back({key, "unknown option" + did_you_mean(key, known_top_level_names())});
  }

  void set(const OptionSpec& spec, const nlohmann::json& raw, const std::string& spelling) {
    // One layer naming an option twice (validation_steps and validation_step_interval) is ambiguous unless
    // both say the same: SimpleTuner passes both to its parser, which keeps the later one in file order.
    const ParsedValue parsed = parse_value(spec, raw);
    const auto [previous, first_time] = given_.emplace(spec.key, std::make_pair(spelling, parsed.value));
    if (!first_time && !raw.is_null()) {
      if (parsed.error.empty() && parsed.value == previous->second.second) return;
      report_.problems.push_back({spec.key, "given twice in one layer, as '" + previous->second.first + "' and '" +
                                                spelling + "' with different values; keep one"});
      return;
    }
    if (!parsed.error.empty()) {
      report_.problems.push_back({spec.key, parsed.error});
      return;
    }
    if (!parsed.given) return;
    if (spec.simpletuner)
      report_.config[spec.key] = parsed.value;
    else
      report_.config["studio"][spec.key.substr(7)] = parsed.value;
  }

  LoadReport& report_;
  std::map<std::string, std::pair<std::string, nlohmann::json>> given_;  // option → spelling and value in this layer
};

// "key=value": the value is read as JSON when it parses (numbers, true, null, {...}), else as text.
std::pair<std::string, nlohmann::json> parse_override(const std::string& text, std::vector<Problem>& problems) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    problems.push_back({text, "--set expects key=value, got " + json_excerpt(text, 80)});
    return {"", nullptr};
  }
  const std::string key = text.substr(0, equals);
  const std::string value_text = text.substr(equals + 1);
  std::string why;
  auto value = try_parse_json_bounded(value_text, &why);
  if (value.is_discarded()) {
    // Text that is not JSON is a string value; JSON nested too deep or a number past double's range is refused.
    const bool json_like = !value_text.empty() && std::string("[{-0123456789").find(value_text[0]) != std::string::npos;
    if (json_like &&
        (why.find("nested deeper") != std::string::npos || why.find("outside the range") != std::string::npos)) {
      problems.push_back({key, "--set " + key + ": " + why + " (value " + json_excerpt(value_text, 60) + ")"});
      return {"", nullptr};
    }
    value = value_text;
  }
  return {key, value};
}

}  // namespace

nlohmann::json default_config() {
  nlohmann::json config = nlohmann::json::object();
  config["studio"] = nlohmann::json::object();
  for (const auto& spec : registry()) {
    if (spec.simpletuner)
      config[spec.key] = spec.default_value;
    else
      config["studio"][spec.key.substr(7)] = spec.default_value;
  }
  return config;
}

LoadReport load_config(const nlohmann::json& user_config, const std::string& preset,
                       const std::vector<std::string>& overrides) {
  LoadReport report;
  report.config = default_config();
  Layering layering(report);
  if (!preset.empty()) {
    try {
      layering.apply(find_preset(preset).config, "preset " + preset);
    } catch (const InputError& e) {
      report.problems.push_back({"preset", e.what()});
    }
  }
  layering.apply(user_config, "config");
  for (const auto& text : overrides) {
    auto [key, value] = parse_override(text, report.problems);
    if (!key.empty()) layering.apply(nlohmann::json{{key, value}}, "--set " + text);
  }
  // Keys already reported for their type keep an earlier value; report each key's problems once.
  std::set<std::string> reported;
  for (const auto& problem : report.problems) reported.insert(problem.key);
  for (auto& problem : validate(report.config)) {
    if (reported.count(problem.key)) continue;
    (problem.severity == Severity::Warning ? report.warnings : report.problems).push_back(std::move(problem));
  }
  const auto ignored = ignored_simpletuner_keys(report.config);
  if (!ignored.empty()) {
    std::string list;
    for (const auto& key : ignored) list += (list.empty() ? "" : ", ") + key;
    report.notes.push_back(std::to_string(ignored.size()) +
                           " SimpleTuner options the studio does not use, kept for export: " + list);
  }
  return report;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InputError("cannot read config file '" + path + "'");
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) throw InputError("cannot read config file '" + path + "'");
  const std::string bytes = text.str();
  // A NUL ends the text for C tools; bytes hidden after one must not be silently accepted or ignored.
  if (const auto nul = bytes.find('\0'); nul != std::string::npos)
    throw InputError("config file '" + path + "' holds a NUL byte at offset " + std::to_string(nul) +
                     " (a JSON text never does; the file is damaged or not a config)");
  std::string why;
  auto config = try_parse_json_bounded(bytes, &why);
  if (config.is_discarded()) {
    const bool syntax =
        why.find("nested deeper") == std::string::npos && why.find("outside the range") == std::string::npos;
    throw InputError("config file '" + path + "'" + (syntax ? " is not valid JSON: " : ": ") + why);
  }
  return config;
}

nlohmann::json read_config_file(const std::string& path) {
  auto config = read_json_file(path);
  if (!config.is_object())
    throw InputError("config file '" + path + "' must hold a JSON object of options, got " +
                     (config.is_null() ? std::string("null") : json_excerpt(config, 60)));
  return config;
}

std::vector<std::string> ignored_simpletuner_keys(const nlohmann::json& resolved) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : resolved.items()) {
    if (key == "studio") continue;
    const OptionSpec* spec = find_option(key);
    if ((spec == nullptr || !spec->simpletuner) && find_simpletuner_field(key) != nullptr) keys.push_back(key);
  }
  return keys;
}

std::string format_problem(const Problem& problem) {
  // A key is user text too: a hostile one may be megabytes long.
  constexpr std::size_t kMaxKey = 100;
  const std::string key = problem.key.size() > kMaxKey ? json_excerpt(problem.key, kMaxKey) : problem.key;
  return (key.empty() ? std::string() : key + ": ") + problem.message;
}

std::string format_problems(const std::vector<Problem>& problems, const std::string& source) {
  std::string text = std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems") +
                     (source.empty() ? "" : " in " + source) + ":";
  for (const auto& problem : problems) text += "\n  " + format_problem(problem);
  return text;
}

bool blocks(const Problem& problem, Purpose purpose) {
  if (problem.severity == Severity::Error) return true;
  return problem.severity == Severity::RunError && purpose == Purpose::Run;
}

namespace {

nlohmann::json resolved_or_throw(LoadReport report, const std::string& source, Purpose purpose) {
  std::vector<Problem> blocking;
  for (const auto& problem : report.problems)
    if (blocks(problem, purpose)) blocking.push_back(problem);
  if (!blocking.empty()) throw InputError(format_problems(blocking, source));
  return std::move(report.config);
}

}  // namespace

nlohmann::json resolve_json(const nlohmann::json& user_config, const std::string& preset,
                            const std::vector<std::string>& overrides, Purpose purpose) {
  return resolved_or_throw(load_config(user_config, preset, overrides), "config", purpose);
}

nlohmann::json resolve_config(const std::string& file_path, const std::string& preset,
                              const std::vector<std::string>& overrides, Purpose purpose) {
  const nlohmann::json user = file_path.empty() ? nlohmann::json::object() : read_config_file(file_path);
  return resolved_or_throw(load_config(user, preset, overrides), file_path, purpose);
}

}  // namespace repa::config
