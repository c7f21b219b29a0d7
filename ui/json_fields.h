#pragma once
// Typed reads of fields of untrusted JSON (followed events.jsonl / metrics.jsonl lines, the worker's stdout,
// status.json): a field of another type, or a number out of range, gives the fallback instead of throwing
// (nlohmann::json::value throws type_error for a present field of another type) or casting out of range.
#include <QtGlobal>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace repa::ui {

// The string at key, or fallback when the object lacks it or holds another type there.
inline std::string text_field(const nlohmann::json& object, const char* key, const std::string& fallback = {}) {
  if (!object.is_object()) return fallback;
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// A JSON number as a qint64: integers within range, and finite floats within range truncated toward zero.
// Anything else (another type, NaN, 1e20, an unsigned above INT64_MAX) is nullopt, never an out-of-range cast.
inline std::optional<qint64> int_of(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<qint64>::max())) return std::nullopt;
    return static_cast<qint64>(u);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    // 2^63 is exactly representable; every double below it and above -2^63 converts without overflow.
    if (!std::isfinite(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) return std::nullopt;
    return static_cast<qint64>(d);
  }
  return std::nullopt;
}

// The integer at key (see int_of), or nullopt when absent, of another type or out of range.
inline std::optional<qint64> int_field(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(key);
  return it != object.end() ? int_of(*it) : std::nullopt;
}

// The finite number at key, or nullopt (NaN and infinities cannot come from JSON text, but can from code).
inline std::optional<double> number_field(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  const double d = it->get<double>();
  return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}

// True when the event names its type with something other than a string ({"type": 3}): such a line is skipped.
inline bool has_bad_type(const nlohmann::json& event) {
  if (!event.is_object()) return false;
  const auto it = event.find("type");
  return it != event.end() && !it->is_string();
}

}  // namespace repa::ui
