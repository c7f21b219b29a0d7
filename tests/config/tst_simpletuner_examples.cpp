// SimpleTuner configs modelled on its examples/*/config.json (tests/config/data) load, validate and
// round-trip through the SimpleTuner export with nothing lost — also with REPA or U-REPA settings added;
// export → load → export is a fixed point. SimpleTuner's own example configs
// (tests/config/data/simpletuner_examples, README there) all load and export losslessly, but for what
// SimpleTuner's loader itself drops.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/base/error.h"
#include "core/config/export.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/config/simpletuner_fields.h"
#include "core/config/simpletuner_loader.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::config;

namespace {

json example(const std::string& name) {
  return read_json_file(repa::test::source_path("tests/config/data/" + name));
}

std::string bare(const std::string& key) {
  return key.substr(key.find_first_not_of('-'));
}

// Loads, exports, reloads and exports again; checks every key of the original survives.
void check_round_trip(const json& original) {
  const auto first = load_config(original, "", {});
  INFO(format_problems(first.problems, "example"));
  REQUIRE(first.problems.empty());
  repa::test::ScratchDir dir;
  const auto exported = export_simpletuner(first.config, dir.path().string());
  for (const auto& [key, value] : original.items()) {
    if (value.is_null()) continue;
    const OptionSpec* spec = find_option(key);
    const std::string name = spec ? spec->key : bare(key);
    CAPTURE(key);
    REQUIRE(exported.config.contains(name));
    if (spec == nullptr)
      CHECK(exported.config[name] == value);  // passed through unchanged
    else
      CHECK(exported.config[name] == first.config[name]);  // typed the same way
  }
  for (const auto& [key, value] : exported.config.items()) {
    CAPTURE(key);
    CHECK(key.rfind("-", 0) != 0);  // bare names only
    CHECK_FALSE(value.is_null());
  }
  const auto second = load_config(exported.config, "", {});
  REQUIRE(second.problems.empty());
  CHECK(second.config == first.config);
  CHECK(export_simpletuner(second.config, dir.path().string()).config == exported.config);
}

}  // namespace

TEST_CASE("SimpleTuner example configs load, validate and round-trip") {
  for (const char* name :
       {"flux-lora.json", "sdxl-lokr.json", "sd3-lora.json", "pixart-lokr.json", "kolors-lora.json"}) {
    CAPTURE(name);
    check_round_trip(example(name));
  }
}

TEST_CASE("older spellings and SimpleTuner's value conventions are understood") {
  const auto flux = load_config(example("flux-lora.json"), "", {}).config;
  CHECK(flux["validation_step_interval"] == 100);  // validation_steps
  CHECK(flux["learning_rate"] == 1e-4);            // "1e-4"
  CHECK(flux["flow_schedule_shift"] == 3.0);
  CHECK(flux["fuse_qkv_projections"] == false);  // SimpleTuner's flag for fused_qkv_projections: kept as is
  CHECK(flux["lora_rank"] == 16);

  const auto sdxl = load_config(example("sdxl-lokr.json"), "", {}).config;
  CHECK(sdxl["checkpoint_step_interval"] == 500);  // --checkpointing_steps
  CHECK(sdxl["gradient_checkpointing"] == true);   // "true"
  CHECK(sdxl["seed"] == 42);                       // "42"
  CHECK(sdxl["snr_gamma"] == 5);
  CHECK(sdxl["optimizer"] == "optimi-lion");
  CHECK(sdxl["push_to_hub"] == "false");  // not the studio's: kept exactly as written

  const auto pixart = load_config(example("pixart-lokr.json"), "", {}).config;
  CHECK(pixart["max_train_steps"] == 200);
  CHECK(pixart["use_ema"] == false);
  CHECK(pixart["validation_step_interval"] == 0);
}

TEST_CASE("REPA or U-REPA added to an example still validates and round-trips") {
  for (const char* name : {"flux-lora.json", "sd3-lora.json", "pixart-lokr.json"}) {
    CAPTURE(name);
    auto config = example(name);
    config["crepa_enabled"] = true;
    config["crepa_block_index"] = 8;
    config["crepa_lambda"] = 0.5;
    config["crepa_scheduler"] = "cosine";
    config["crepa_warmup_steps"] = "100";
    config["crepa_similarity_threshold"] = 0.9;
    check_round_trip(config);
    repa::test::ScratchDir dir;
    const auto exported = export_simpletuner(resolve_json(config), dir.path().string()).config;
    CHECK(exported["crepa_enabled"] == true);
    CHECK(exported["crepa_scheduler"] == "cosine");
    CHECK(exported["crepa_warmup_steps"] == 100);
  }
  for (const char* name : {"sdxl-lokr.json", "kolors-lora.json"}) {
    CAPTURE(name);
    auto config = example(name);
    config["urepa_enabled"] = true;
    config["urepa_lambda"] = 0.5;
    config["urepa_manifold_weight"] = 3.0;
    config["urepa_scheduler"] = "polynomial";
    config["urepa_power"] = 2.0;
    check_round_trip(config);
    // The same settings as REPA on a UNet family are refused with the alternative named.
    auto wrong = example(name);
    wrong["crepa_enabled"] = true;
    const auto problems = load_config(wrong, "", {}).problems;
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].message.find("use urepa_enabled") != std::string::npos);
  }
}

TEST_CASE("a key SimpleTuner no longer registers is an error with a suggestion") {
  const auto report = load_config(example("flux-legacy.json"), "", {});
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].key == "flux_schedule_shift");
  CHECK(report.problems[0].message == "unknown option (did you mean \"flow_schedule_shift\"?)");
}

TEST_CASE("the studio's dataset folder becomes a multidatabackend.json") {
  repa::test::ScratchDir dir;
  const auto resolved = resolve_json({{"resolution", 256}, {"studio", {{"dataset_dir", "/data/imagenet"}}}});
  const auto exported = export_simpletuner(resolved, dir.path().string());
  REQUIRE(exported.multidatabackend.is_array());
  REQUIRE(exported.multidatabackend.size() == 2);
  CHECK(exported.multidatabackend[0]["instance_data_dir"] == "/data/imagenet");
  CHECK(exported.multidatabackend[0]["resolution"] == 256);
  CHECK(exported.multidatabackend[1]["dataset_type"] == "text_embeds");
  CHECK(exported.config["data_backend_config"] == (dir.path() / "multidatabackend.json").string());
  CHECK_FALSE(exported.config.contains("studio"));
  CHECK(exported.multidatabackend[0]["crop"] == true);  // a run without a family trains square centre crops
  CHECK(exported.multidatabackend[0]["resolution_type"] == "pixel");
  // A family trains on SimpleTuner's dataset defaults, in the studio as in the export: aspect buckets, no crop.
  const auto family = export_simpletuner(
      resolve_json({{"model_family", "sdxl"}, {"resolution", 1024}, {"studio", {{"dataset_dir", "/data/photos"}}}}, "",
                   {}, Purpose::Export),
      dir.path().string());
  CHECK(family.multidatabackend[0]["resolution_type"] == "pixel_area");
  CHECK(family.multidatabackend[0]["crop"] == false);
  CHECK(family.multidatabackend[0]["crop_style"] == "random");
  CHECK_FALSE(family.multidatabackend[0].contains("minimum_image_size"));
  CHECK(family.config["resolution_type"] == "pixel_area");
  bool said = false;
  for (const auto& line : exported.dropped)
    said |= line.rfind("studio.dataset_dir: written as multidatabackend.json", 0) == 0;
  CHECK(said);
}

namespace {

const std::string kExamples = "tests/config/data/simpletuner_examples";

// Keys SimpleTuner's JSON loader never hands to its parser: null values, web-interface fields without a
// command-line flag, and unregistered keys whose value it drops ("false", "", ...).
bool dropped_by_simpletuner(const std::string& key, const json& value) {
  if (value.is_null()) return true;
  if (find_option(key) != nullptr) return false;
  const SimpleTunerField* field = find_simpletuner_field(key);
  if (field != nullptr) return !accepted_by_simpletuner_cli(*field);
  return !dropped_by_simpletuner_loader(key, value).empty();
}

// Examples SimpleTuner itself cannot load at that commit: its parser's model_family choices come from its
// bundled model_metadata.json, and Python's json module refuses a trailing comma as ours does.
const std::map<std::string, std::string> kRejectedBySimpleTuner = {
    {"bria.lycoris-lokr.json", "model_family: \"bria\" is not one of"},
    {"kandinsky5-image-6b-i2i.lycoris-lokr.json", "did you mean \"kandinsky5_image\"?"},
    {"pixart.peft-controlnet-lora.json", "model_family: \"pixart_sigma\" is not one of"},
    {"hidream.peft-controlnet-lora.json", "is not valid JSON"},
};

}  // namespace

TEST_CASE("SimpleTuner's own example configs validate and export losslessly") {
  int valid = 0, rejected = 0, warned = 0;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(repa::test::source_path(kExamples)))
    if (entry.path().extension() == ".json" || entry.path().extension() == ".example") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    CAPTURE(name);
    const auto rejection = kRejectedBySimpleTuner.find(name);
    if (rejection != kRejectedBySimpleTuner.end()) {
      ++rejected;
      try {
        const auto report = load_config(read_json_file(path.string()), "", {});
        CHECK(format_problems(report.problems, name).find(rejection->second) != std::string::npos);
      } catch (const repa::InputError& e) {
        CHECK(std::string(e.what()).find(rejection->second) != std::string::npos);
        CHECK(std::string(e.what()).find(name) != std::string::npos);
      }
      continue;
    }
    const json original = read_json_file(path.string());
    const auto report = load_config(original, "", {});
    INFO(format_problems(report.problems, name));
    REQUIRE(report.problems.empty());
    ++valid;
    warned += report.warnings.empty() ? 0 : 1;
    for (const auto& warning : report.warnings) CHECK(warning.severity == Severity::Warning);

    repa::test::ScratchDir dir;
    const auto exported = export_simpletuner(report.config, dir.path().string());
    for (const auto& [key, value] : original.items()) {
      CAPTURE(key);
      const OptionSpec* spec = find_option(key);
      const std::string bare_name = spec ? spec->key : bare(key);
      if (dropped_by_simpletuner(bare_name, value)) {
        if (spec == nullptr) CHECK_FALSE(exported.config.contains(bare_name));  // a declared option keeps its default
        continue;
      }
      REQUIRE(exported.config.contains(bare_name));
      if (spec == nullptr)
        CHECK(exported.config[bare_name] == value);  // passed through unchanged
      else
        CHECK(exported.config[bare_name] == report.config[bare_name]);  // typed the way SimpleTuner parses it
    }
    // The export loads back to the same config and exports to the same file.
    const auto second = load_config(exported.config, "", {});
    REQUIRE(second.problems.empty());
    CHECK(second.config == report.config);
    CHECK(export_simpletuner(second.config, dir.path().string()).config == exported.config);
  }
  // bghira/SimpleTuner@bc8e6ab: 115 examples/*/config.json and config/config.json.example.
  CHECK(valid == 112);
  CHECK(rejected == 4);
  CHECK(warned == 112);  // every one sets something the studio's trainer does not use (num_train_epochs, ...)
}

TEST_CASE("config.json.example's validation_torch_compile \"false\" is a warning, dropped from the export") {
  const json original = read_json_file(repa::test::source_path(kExamples + "/config.json.example"));
  REQUIRE(original["--validation_torch_compile"] == "false");
  REQUIRE(find_simpletuner_field("validation_torch_compile") == nullptr);  // SimpleTuner no longer registers it
  const auto report = load_config(original, "", {});
  CHECK(report.problems.empty());
  bool named = false;
  for (const auto& warning : report.warnings)
    named |= warning.key == "validation_torch_compile" &&
             warning.message ==
                 "unknown option, ignored: SimpleTuner's config loader drops the string \"false\" before its parser";
  CHECK(named);
  CHECK_FALSE(report.config.contains("validation_torch_compile"));
  repa::test::ScratchDir dir;
  const auto exported = export_simpletuner(report.config, dir.path().string()).config;
  CHECK_FALSE(exported.contains("validation_torch_compile"));
  CHECK(exported["disable_benchmark"] == "false");  // registered by SimpleTuner: passed on as written
  CHECK(exported["push_to_hub"] == "true");
  CHECK(exported["lycoris_config"] == "config/lycoris_config.json");
  CHECK(exported["learning_rate"] == 1e-4);

  // The same key with a JSON false reaches SimpleTuner's parser as --validation_torch_compile=false and fails.
  auto strict = original;
  strict["--validation_torch_compile"] = false;
  const auto refused = load_config(strict, "", {});
  REQUIRE(refused.problems.size() == 1);
  CHECK(refused.problems[0].key == "validation_torch_compile");
  CHECK(refused.problems[0].message.rfind("unknown option", 0) == 0);
  CHECK(refused.problems[0].message.find("ignored") == std::string::npos);
}
