// SimpleTuner's JSON loader rule for keys it no longer registers (cli_utils.mapping_to_cli_args): a value it
// drops before its parser is a warning that names the key; any other value fails its parser and is an error.
#include <doctest/doctest.h>

#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/config/simpletuner_loader.h"

using nlohmann::json;
using namespace repa::config;

TEST_CASE("the values SimpleTuner's loader drops") {
  for (const json& value : {json(nullptr), json("false"), json("False"), json(" FALSE "), json(""), json("  "),
                            json::object(), json{{"a", 1}}, json::array(), json{"", " "}}) {
    CAPTURE(value.dump());
    CHECK_FALSE(dropped_by_simpletuner_loader("validation_torch_compile", value).empty());
  }
  // These reach SimpleTuner's parser (--key=false, a bare --key, --key=0, --key=x) and fail there.
  for (const json& value :
       {json(false), json(true), json("true"), json("no"), json("0"), json(0), json(1.5), json{"x"}, json{1}}) {
    CAPTURE(value.dump());
    CHECK(dropped_by_simpletuner_loader("validation_torch_compile", value).empty());
  }
  // Dataset and web-interface keys its loader consumes whatever their value.
  CHECK(dropped_by_simpletuner_loader("--aspect_ratio_bucketing", true) ==
        "SimpleTuner's config loader skips this key (a dataset or web-interface setting)");
  CHECK_FALSE(dropped_by_simpletuner_loader("__active_tab__", "model").empty());
}

TEST_CASE("an unknown key with a dropped value is a warning, with any other value an error") {
  auto report = load_config({{"--validation_torch_compile", "false"}, {"repeats", 3}, {"gone", nullptr}}, "", {});
  CHECK(report.problems.empty());
  REQUIRE(report.warnings.size() == 3);  // null is dropped too, and said
  for (const auto& warning : report.warnings) {
    CHECK(warning.severity == Severity::Warning);
    CHECK(warning.message.rfind("unknown option, ignored: ", 0) == 0);
  }
  CHECK(report.warnings[0].key == "validation_torch_compile");
  CHECK_FALSE(report.config.contains("validation_torch_compile"));
  CHECK_FALSE(report.config.contains("repeats"));
  CHECK(resolve_json({{"validation_torch_compile", "False"}}).is_object());  // warnings never block

  report = load_config({{"validation_torch_compile", false}, {"validation_torch_compil", "true"}}, "", {});
  CHECK(report.warnings.empty());
  REQUIRE(report.problems.size() == 2);
  for (const auto& problem : report.problems) {
    CHECK(problem.message.rfind("unknown option", 0) == 0);
    CHECK(problem.message.find("ignored") == std::string::npos);
    CHECK(problem.severity == Severity::Error);
  }

  // validate() on a config built elsewhere (the window) follows the same rule.
  auto config = default_config();
  config["validation_torch_compile"] = "false";
  config["validation_torch_compil"] = 1;
  const auto problems = validate(config);
  REQUIRE(problems.size() == 2);
  for (const auto& problem : problems)
    CHECK(problem.severity == (problem.key == "validation_torch_compile" ? Severity::Warning : Severity::Error));
}

TEST_CASE("the same option twice in one file: accepted when both say the same, as SimpleTuner's parser does") {
  CHECK(load_config({{"validation_step_interval", 500}, {"validation_steps", "500"}}, "", {}).problems.empty());
  const auto problems = load_config({{"validation_step_interval", 500}, {"validation_steps", 20}}, "", {}).problems;
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message.find("with different values") != std::string::npos);
}

TEST_CASE("the loader's renamed keys: save_total_limit and vae_cache_preprocess") {
  auto report = load_config({{"save_total_limit", "3"}, {"vae_cache_preprocess", "false"}}, "", {});
  CHECK(report.problems.empty());
  CHECK(report.warnings.empty());
  CHECK(report.config["checkpoints_total_limit"] == 3);  // typed as the registry's option
  CHECK(report.config["vae_cache_ondemand"] == true);   // SimpleTuner's flag, kept for export
  CHECK_FALSE(report.config.contains("save_total_limit"));
  bool noted = false;
  for (const auto& note : report.notes)
    noted |= note == "'save_total_limit' = \"3\" is read by SimpleTuner's loader as checkpoints_total_limit = \"3\"";
  CHECK(noted);

  // A true vae_cache_preprocess (caching up front, SimpleTuner's default) and an empty save_total_limit: dropped.
  report = load_config({{"vae_cache_preprocess", true}, {"save_total_limit", ""}}, "", {});
  CHECK(report.problems.empty());
  REQUIRE(report.warnings.size() == 2);
  CHECK_FALSE(report.config.contains("vae_cache_ondemand"));
  CHECK(report.config["checkpoints_total_limit"] == find_option("checkpoints_total_limit")->default_value);
  CHECK(dropped_by_simpletuner_loader("vae_cache_preprocess", 0).empty());  // falsey: renamed, not dropped
  CHECK(renamed_by_simpletuner_loader("vae_cache_preprocess", "off")->second == true);
  CHECK_FALSE(renamed_by_simpletuner_loader("vae_cache_preprocess", "yes"));
}
