// How a value written in a config becomes the typed value the registry keeps, following SimpleTuner's
// conventions: null means "not given", numbers may be written as strings ("1e-4") and parse as Python's
// int()/float() would, booleans accept "true"/"false" (and yes/no, on/off, 1/0), choices compare as text.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/config/registry.h"

namespace repa::config {

struct ParsedValue {
  bool given = false;    // false: null (or an empty string for a number or flag): keep the layer below
  nlohmann::json value;  // the typed value when given and valid
  std::string error;     // what was expected, when the value does not fit the option
};

ParsedValue parse_value(const OptionSpec& spec, const nlohmann::json& raw);

// Python's int() and float() on text: surrounding spaces allowed, nothing else after the number.
std::optional<long long> parse_python_int(const std::string& text);
std::optional<double> parse_python_float(const std::string& text);

// A value for messages: strings quoted, long values shortened.
std::string describe_value(const nlohmann::json& value);

// Whether `value` has the type `spec` declares (null only where the default is null).
bool has_declared_type(const OptionSpec& spec, const nlohmann::json& value);
std::string expected_type(const OptionSpec& spec);  // "a whole number", "true or false", ...

}  // namespace repa::config
