// JSON from untrusted sources (config files, --set values, safetensors headers, checkpoint state, event
// lines): nesting depth is bounded at parse time, and values quoted in messages are cut to a short excerpt,
// so a hostile file can neither overflow the stack nor flood a message.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace repa {

// Deeper than any file the studio writes or reads (SimpleTuner configs nest 4 levels).
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; throws InputError naming `source` (a file or key) on a syntax error, on nesting deeper
// than `max_depth`, or on a number outside double's range. Never recurses deeper than `max_depth`.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth);

// The same, returning a discarded value (is_discarded()) instead of throwing, and the reason in *why.
nlohmann::json try_parse_json_bounded(std::string_view text, std::string* why = nullptr,
                                      int max_depth = kMaxJsonDepth);

// A value for a message: compact JSON of at most `max_chars` characters ("…" appended when cut). Walks
// at most kMaxJsonDepth levels and never dumps a large value whole.
std::string json_excerpt(const nlohmann::json& value, std::size_t max_chars = 120);

}  // namespace repa
