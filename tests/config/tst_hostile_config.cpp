// Hostile config input: nesting deep enough to overflow a recursive parser or printer, numbers past double's
// range, integers past int64, NUL bytes, a null config, run names that escape output_dir. Each is refused
// with the file or key named, and no message quotes a value whole.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "core/base/error.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/config/values.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::config;
using repa::test::contains;
using repa::test::error_of;

namespace {

constexpr int kHostileDepth = 65536;  // the depth that overflowed the stack (131 KB of brackets)

std::string nested_list(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

bool mentions(const std::vector<Problem>& problems, const std::string& key, const std::string& fragment) {
  for (const auto& problem : problems)
    if (problem.key == key && contains(problem.message, fragment)) return true;
  return false;
}

std::string all_messages(const std::vector<Problem>& problems) {
  return format_problems(problems, "test");
}

}  // namespace

TEST_CASE("a config file nested 65,536 levels deep is refused with the file named") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("deep.json");
  repa::test::write_bytes(path, "{\"crepa_lambda\": " + nested_list(kHostileDepth) + "}");
  const auto message = error_of([&] { read_config_file(path); });
  CHECK(contains(message, path));
  CHECK(contains(message, "nested deeper than 64 levels"));
  CHECK(message.size() < 300);
  // The limit leaves room for every real config: 60 levels still parse.
  repa::test::write_bytes(path, "{\"x\": " + nested_list(60) + "}");
  CHECK(read_config_file(path)["x"].is_array());
}

TEST_CASE("a --set value nested 65,536 levels deep is a problem of its key, not a crash") {
  const auto report = load_config(json::object(), "", {"crepa_lambda=" + nested_list(kHostileDepth)});
  CHECK(mentions(report.problems, "crepa_lambda", "nested deeper than 64 levels"));
  CHECK(all_messages(report.problems).size() < 400);
  // An unknown key is named the same way.
  const auto unknown = load_config(json::object(), "", {"x=" + std::string(kHostileDepth, '[')});
  CHECK(mentions(unknown.problems, "x", "nested deeper"));
}

TEST_CASE("a JSON option given as deeply nested text is refused with a short message") {
  const OptionSpec* spec = nullptr;
  for (const auto& candidate : registry())
    if (candidate.type == OptionType::Json) spec = &candidate;
  REQUIRE(spec != nullptr);
  const auto parsed = parse_value(*spec, json(nested_list(kHostileDepth)));
  CHECK(contains(parsed.error, "nested deeper"));
  CHECK(parsed.error.size() < 300);
}

TEST_CASE("describe_value quotes at most a short excerpt of any value") {
  json deep = json::array();
  for (int i = 0; i < 200; ++i) deep = json::array({deep});
  CHECK(describe_value(deep).size() < 80);
  CHECK(describe_value(json(std::string(1 << 20, 'x'))).size() < 80);
  CHECK(describe_value(json(0.25)) == "0.25");
  CHECK(describe_value(json("cosine")) == "\"cosine\"");
}

TEST_CASE("numbers past double's range are refused in a file and in --set") {
  repa::test::ScratchDir dir;
  for (const char* number : {"1e400", "1e309", "-1e309"}) {
    const auto path = dir.file("big.json");
    repa::test::write_bytes(path, std::string("{\"learning_rate\": ") + number + "}");
    const auto message = error_of([&] { read_config_file(path); });
    CHECK_MESSAGE(contains(message, path), number);
    CHECK_MESSAGE(contains(message, "outside the range of a double"), number);
    const auto report = load_config(json::object(), "", {std::string("learning_rate=") + number});
    CHECK_MESSAGE(mentions(report.problems, "learning_rate", "outside the range"), number);
  }
}

TEST_CASE("integers past int64 and absurd step counts are refused with the key named") {
  auto report = load_config(json::object(), "", {"max_train_steps=18446744073709551615"});
  CHECK(mentions(report.problems, "max_train_steps", "above 9223372036854775807"));
  report = load_config(json::parse(R"({"max_train_steps": 18446744073709551615})"), "", {});
  CHECK(mentions(report.problems, "max_train_steps", "above 9223372036854775807"));
  report = load_config(json::object(), "", {"max_train_steps=9223372036854775807"});
  CHECK(mentions(report.problems, "max_train_steps", "is above 1000000000000 steps"));
  report = load_config(json::object(), "", {"seed=99999999999999999999999"});
  CHECK(mentions(report.problems, "seed", "is not a whole number"));
  report = load_config(json::object(), "", {"max_train_steps=1000000"});
  CHECK_FALSE(mentions(report.problems, "max_train_steps", ""));
}

TEST_CASE("a config file that is null, not an object, or holds a NUL byte is refused naming the file") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("c.json");
  repa::test::write_bytes(path, "null");
  auto message = error_of([&] { read_config_file(path); });
  CHECK(contains(message, path));
  CHECK(contains(message, "must hold a JSON object of options, got null"));
  repa::test::write_bytes(path, "[1, 2]");
  CHECK(contains(error_of([&] { read_config_file(path); }), "got [1,2]"));
  repa::test::write_bytes(path, std::string("{\"seed\": 1}\0{\"seed\": 2}", 23));
  message = error_of([&] { read_config_file(path); });
  CHECK(contains(message, path));
  CHECK(contains(message, "NUL byte at offset 11"));
}

TEST_CASE("a run name is exactly one folder name inside output_dir") {
  for (const char* bad : {"../x", "..", ".", "a/b", "/tmp/x"}) {
    const auto report = load_config(json::object(), "", {std::string("studio.run_name=") + bad});
    CHECK_MESSAGE(mentions(report.problems, "studio.run_name", "a run name is one folder name"), bad);
  }
  const auto report = load_config(json::object(), "", {"studio.run_name=sit-b-demo.2"});
  CHECK_FALSE(mentions(report.problems, "studio.run_name", ""));
}

TEST_CASE("a megabyte-long unknown key is reported at once, quoted as an excerpt") {
  const std::string key(1 << 20, 'k');
  const auto start = std::chrono::steady_clock::now();
  const auto report = load_config(json{{key, 1}}, "", {});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 2.0);  // was minutes: an edit distance against every option name
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].message == "unknown option");
  CHECK(all_messages(report.problems).size() < 200);
  // Typos are still caught.
  CHECK(mentions(load_config(json{{"learning_rat", 1e-4}}, "", {}).problems, "learning_rat",
                 "did you mean \"learning_rate\""));
}

TEST_CASE("a --set without '=' quotes the argument as an excerpt") {
  const auto report = load_config(json::object(), "", {std::string(100000, 'x')});
  REQUIRE(report.problems.size() == 1);
  CHECK(contains(report.problems[0].message, "--set expects key=value, got \"xxx"));
  CHECK(all_messages(report.problems).size() < 300);
}
