#include "core/base/bounded_json.h"

#include <cmath>

#include "core/base/error.h"

namespace repa {
namespace {

struct TooDeep {};
struct OutOfRange {};

// Appends a compact rendering of `value` to `out` until `budget` characters are used; never descends
// below `depth_left` levels.
void excerpt_into(const nlohmann::json& value, std::string& out, std::size_t budget, int depth_left) {
  if (out.size() >= budget) return;
  if (value.is_object() || value.is_array()) {
    const bool object = value.is_object();
    if (depth_left <= 0) {
      out += object ? "{…}" : "[…]";
      return;
    }
    out += object ? '{' : '[';
    bool first = true;
    for (auto it = value.begin(); it != value.end() && out.size() < budget; ++it) {
      if (!first) out += ',';
      first = false;
      if (object) out += nlohmann::json(it.key()).dump() + ':';
      excerpt_into(*it, out, budget, depth_left - 1);
    }
    if (out.size() < budget) out += object ? '}' : ']';
    return;
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    // Dump only a prefix of a long string, so a megabyte string costs nothing.
    const std::string head = s.size() > budget ? s.substr(0, budget) : s;
    out += nlohmann::json(head).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += value.dump();
}

nlohmann::json parse_impl(std::string_view text, int max_depth) {
  const nlohmann::json::parser_callback_t bound = [max_depth](int depth, nlohmann::json::parse_event_t event,
                                                              nlohmann::json& parsed) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth)
      throw TooDeep{};
    // nlohmann turns 1e400 into inf; a config value or header entry never means infinity.
    if (event == nlohmann::json::parse_event_t::value && parsed.is_number_float() &&
        !std::isfinite(parsed.get<double>()))
      throw OutOfRange{};
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), bound);
  } catch (const nlohmann::json::out_of_range& e) {
    if (e.id == 406) throw OutOfRange{};  // "number overflow parsing '1e400'"
    throw;
  }
}

}  // namespace

nlohmann::json parse_json_bounded(std::string_view text, const std::string& source, int max_depth) {
  try {
    return parse_impl(text, max_depth);
  } catch (const TooDeep&) {
    throw InputError(source + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
  } catch (const OutOfRange&) {
    throw InputError(source + ": a number is outside the range of a double (e.g. 1e400)");
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source + ": not valid JSON: " + e.what());
  }
}

nlohmann::json try_parse_json_bounded(std::string_view text, std::string* why, int max_depth) {
  try {
    return parse_impl(text, max_depth);
  } catch (const TooDeep&) {
    if (why) *why = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
  } catch (const OutOfRange&) {
    if (why) *why = "a number is outside the range of a double";
  } catch (const nlohmann::json::exception& e) {
    if (why) *why = e.what();
  }
  return nlohmann::json(nlohmann::json::value_t::discarded);
}

std::string json_excerpt(const nlohmann::json& value, std::size_t max_chars) {
  std::string out;
  excerpt_into(value, out, max_chars, kMaxJsonDepth);
  if (out.size() > max_chars) {
    out.resize(max_chars);
    // Do not leave half a UTF-8 sequence at the cut.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();
    out += "…";
  }
  return out;
}

}  // namespace repa
