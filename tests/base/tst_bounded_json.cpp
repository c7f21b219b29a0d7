#include "core/base/bounded_json.h"

#include <doctest/doctest.h>

#include <string>

#include "core/base/error.h"

namespace {

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string message_of(const std::string& text) {
  try {
    (void)repa::parse_json_bounded(text, "config.json");
  } catch (const repa::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("nesting up to the limit parses, one level more is refused by name") {
  CHECK(repa::parse_json_bounded(nested_arrays(repa::kMaxJsonDepth), "x").is_array());
  const auto message = message_of(nested_arrays(repa::kMaxJsonDepth + 1));
  CHECK(message.find("config.json") != std::string::npos);
  CHECK(message.find("deeper than 64") != std::string::npos);
}

TEST_CASE("65,536 levels of nesting neither crash nor recurse") {
  const std::string deep_object = [] {
    std::string s;
    for (int i = 0; i < 65536; ++i) s += "{\"a\":";
    s += "1";
    s += std::string(65536, '}');
    return s;
  }();
  CHECK(message_of(deep_object).find("deeper than") != std::string::npos);
  std::string why;
  CHECK(repa::try_parse_json_bounded(nested_arrays(65536), &why).is_discarded());
  CHECK(why.find("deeper than") != std::string::npos);
}

TEST_CASE("numbers outside a double's range and syntax errors are named") {
  CHECK(message_of("{\"learning_rate\": 1e400}").find("outside the range") != std::string::npos);
  CHECK(message_of("{\"a\": -1e309}").find("outside the range") != std::string::npos);
  CHECK(message_of("{\"a\": 1,").find("config.json: not valid JSON") == 0);
  CHECK(repa::parse_json_bounded("{\"a\": 1e300}", "x")["a"].get<double>() == doctest::Approx(1e300));
}

TEST_CASE("an excerpt is short, cut on a character boundary and marked") {
  CHECK(repa::json_excerpt(nlohmann::json{{"a", 1}}) == "{\"a\":1}");
  const auto long_string = nlohmann::json(std::string(100000, 'x'));
  const auto cut = repa::json_excerpt(long_string, 50);
  CHECK(cut.size() <= 50 + std::string("…").size());
  CHECK(cut.substr(cut.size() - std::string("…").size()) == "…");
  const auto umlauts = repa::json_excerpt(nlohmann::json(std::string(200, 'a') + "ääääää"), 203);
  CHECK(nlohmann::json(umlauts).dump().size() > 0);  // valid UTF-8: dump would throw on a torn sequence
  // A deep value built in memory is rendered without walking all of it.
  nlohmann::json deep = 1;
  for (int i = 0; i < 1000; ++i) deep = nlohmann::json::array({deep});
  const auto text = repa::json_excerpt(deep, 1000);
  CHECK(text.find("[…]") != std::string::npos);
}
