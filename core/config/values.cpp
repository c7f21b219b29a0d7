#include "core/config/values.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "core/base/bounded_json.h"
#include "core/config/suggest.h"

namespace repa::config {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\n\r");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\n\r");
  return text.substr(first, last - first + 1);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Python allows single underscores between digits ("1_000").
std::optional<std::string> without_digit_underscores(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '_') {
      out += text[i];
      continue;
    }
    const bool between_digits = i > 0 && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i - 1])) &&
                                std::isdigit(static_cast<unsigned char>(text[i + 1]));
    if (!between_digits) return std::nullopt;
  }
  return out;
}

std::string choice_text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string choices_list(const OptionSpec& spec) {
  std::string list;
  for (const auto& choice : spec.choices) {
    if (choice.is_null()) continue;
    list += (list.empty() ? "" : ", ") + choice_text(choice);
  }
  return list;
}

}  // namespace

std::optional<long long> parse_python_int(const std::string& raw) {
  auto text = without_digit_underscores(trim(raw));
  if (!text || text->empty()) return std::nullopt;
  std::size_t i = (*text)[0] == '+' || (*text)[0] == '-' ? 1 : 0;
  if (i == text->size()) return std::nullopt;
  for (std::size_t j = i; j < text->size(); ++j)
    if (!std::isdigit(static_cast<unsigned char>((*text)[j]))) return std::nullopt;
  errno = 0;
  const long long value = std::strtoll(text->c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;
  return value;
}

std::optional<double> parse_python_float(const std::string& raw) {
  auto text = without_digit_underscores(trim(raw));
  if (!text || text->empty()) return std::nullopt;
  const std::string low = lower(*text);
  // strtod also reads hexadecimal ("0x1p3"), which Python's float() refuses.
  if (low.find('x') != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text->c_str(), &end);
  if (end == text->c_str() || *end != '\0') return std::nullopt;
  return value;
}

std::string describe_value(const nlohmann::json& value) {
  // Never dump a value whole: it may be a megabyte string or nest thousands of levels.
  return json_excerpt(value, 60);
}

std::string expected_type(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::Bool:
      return "true or false";
    case OptionType::Int:
      return "a whole number";
    case OptionType::Float:
      return "a number";
    case OptionType::String:
      return "text";
    case OptionType::Path:
      return "a path";
    case OptionType::Choice:
      return "one of " + choices_list(spec);
    case OptionType::Json:
      return "a JSON object or list";
  }
  return "?";
}

bool has_declared_type(const OptionSpec& spec, const nlohmann::json& value) {
  if (value.is_null()) return spec.default_value.is_null();
  switch (spec.type) {
    case OptionType::Bool:
      return value.is_boolean();
    case OptionType::Int:
      return value.is_number_integer();
    case OptionType::Float:
      return value.is_number();
    case OptionType::String:
    case OptionType::Path:
      return value.is_string();
    case OptionType::Choice:
      return std::find(spec.choices.begin(), spec.choices.end(), value) != spec.choices.end();
    case OptionType::Json:
      return value.is_object() || value.is_array();
  }
  return false;
}

ParsedValue parse_value(const OptionSpec& spec, const nlohmann::json& raw) {
  ParsedValue out;
  if (raw.is_null()) return out;
  const bool blank_text = raw.is_string() && trim(raw.get<std::string>()).empty();
  const auto fail = [&](const std::string& why = "") {
    out.given = true;
    out.error = describe_value(raw) + " is not " + expected_type(spec) + why;
    return out;
  };
  const auto accept = [&](nlohmann::json value) {
    out.given = true;
    out.value = std::move(value);
    return out;
  };
  switch (spec.type) {
    case OptionType::Bool: {
      if (raw.is_boolean()) return accept(raw);
      if (blank_text) return out;
      if (raw.is_number_integer() && (raw == 0 || raw == 1)) return accept(raw == 1);
      if (!raw.is_string()) return fail();
      const std::string text = lower(trim(raw.get<std::string>()));
      if (text == "1" || text == "true" || text == "yes" || text == "y" || text == "on") return accept(true);
      if (text == "0" || text == "false" || text == "no" || text == "n" || text == "off") return accept(false);
      return fail();
    }
    case OptionType::Int: {
      // JSON reads 18446744073709551615 as unsigned; the trainer's counters are signed 64-bit.
      if (raw.is_number_unsigned() && raw.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        return fail(" (above 9223372036854775807, the largest whole number an option holds)");
      if (raw.is_number_integer()) return accept(raw);
      // A whole number written as 5.0 is taken as 5; SimpleTuner's parser would refuse the text "5.0".
      if (raw.is_number_float()) {
        const double value = raw.get<double>();
        if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9e15)
          return accept(static_cast<long long>(value));
        return fail();
      }
      if (blank_text) return out;
      if (!raw.is_string()) return fail();
      if (const auto value = parse_python_int(raw.get<std::string>())) return accept(*value);
      return fail();
    }
    case OptionType::Float: {
      if (raw.is_number()) return accept(raw.get<double>());
      if (blank_text) return out;
      if (!raw.is_string()) return fail();
      if (const auto value = parse_python_float(raw.get<std::string>())) {
        if (!std::isfinite(*value)) return fail(" (infinite or NaN)");
        return accept(*value);
      }
      return fail();
    }
    case OptionType::String:
    case OptionType::Path: {
      if (raw.is_string()) return accept(raw);
      if (raw.is_number()) return accept(raw.dump());  // SimpleTuner passes it on as text
      return fail();
    }
    case OptionType::Choice: {
      if (raw.is_object() || raw.is_array()) return fail();
      const std::string text = choice_text(raw);
      std::vector<std::string> names;
      for (const auto& choice : spec.choices) {
        if (choice.is_null()) continue;
        if (choice_text(choice) == text) return accept(choice);
        names.push_back(choice_text(choice));
      }
      if (blank_text) return out;
      return fail(did_you_mean(text, names));
    }
    case OptionType::Json: {
      if (raw.is_object() || raw.is_array()) return accept(raw);
      if (blank_text) return out;
      if (raw.is_string()) {
        std::string why;
        const auto parsed = try_parse_json_bounded(raw.get<std::string>(), &why);
        if (!parsed.is_discarded() && (parsed.is_object() || parsed.is_array())) return accept(parsed);
        if (parsed.is_discarded() && why.find("nested deeper") != std::string::npos) return fail(" (" + why + ")");
      }
      return fail();
    }
  }
  return fail();
}

}  // namespace repa::config
