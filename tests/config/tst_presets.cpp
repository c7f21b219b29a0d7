// Presets: the compiled-in copies equal presets/*.json, every preset validates, and the settings the
// issue asks for are what the presets hold.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/config/loader.h"
#include "core/config/presets.h"
#include "core/config/registry.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::config;

TEST_CASE("the embedded presets equal presets/*.json (rerun scripts/gen_config_tables.py when not)") {
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(repa::test::source_path("presets"))) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().stem().string();
    on_disk.insert(name);
    CAPTURE(name);
    const auto preset = find_preset(name);
    const auto file = read_json_file(entry.path().string());
    CHECK(preset.config == file["config"]);
    CHECK(preset.description == file["description"]);
  }
  std::set<std::string> embedded;
  for (const auto& preset : presets()) embedded.insert(preset.name);
  CHECK(embedded == on_disk);
}

TEST_CASE("every preset validates on its own") {
  for (const auto& preset : presets()) {
    CAPTURE(preset.name);
    const auto report = load_config(json::object(), preset.name, {});
    INFO(format_problems(report.problems, preset.name));
    CHECK(report.problems.empty());
    CHECK_FALSE(preset.description.empty());
    CHECK_FALSE(preset.notes.empty());
  }
}

TEST_CASE("family presets: REPA for transformers, U-REPA for UNets") {
  const std::map<std::string, int> repa_blocks = {{"flux", 8},    {"flux2", 8},    {"sd3", 8},
                                                  {"chroma", 8},  {"sana", 10},    {"pixart", 10},
                                                  {"hidream", 8}, {"auraflow", 8}, {"lumina2", 8}};
  for (const auto& [name, block] : repa_blocks) {
    CAPTURE(name);
    const auto config = resolve_json(json::object(), name);
    CHECK(config["model_family"] == name);
    CHECK(config["crepa_enabled"] == true);
    CHECK(config["crepa_block_index"] == block);
    CHECK(config["crepa_lambda"] == 0.5);
    CHECK(config["crepa_encoder"] == "dinov2_vitg14");
    CHECK(config["crepa_encoder_image_size"] == 518);
    CHECK(config["urepa_enabled"] == false);
  }
  for (const char* name : {"sdxl", "sd1x", "kolors"}) {
    CAPTURE(name);
    const auto config = resolve_json(json::object(), name);
    CHECK(config["urepa_enabled"] == true);
    CHECK(config["urepa_lambda"] == 0.5);
    CHECK(config["urepa_manifold_weight"] == 3.0);
    CHECK(config["crepa_enabled"] == false);
  }
  const auto low = resolve_json(json::object(), "flux-lowvram");
  CHECK(low["crepa_encoder"] == "dinov2_vits14");
  CHECK(low["crepa_encoder_image_size"] == 224);
}

TEST_CASE("REPA paper presets: SiT-B/2, SiT-L/2, SiT-XL/2") {
  const std::map<std::string, std::pair<std::string, int>> setups = {
      {"sit-b-2", {"B", 3}}, {"sit-l-2", {"L", 7}}, {"sit-xl-2", {"XL", 7}}};
  for (const auto& [name, setup] : setups) {
    CAPTURE(name);
    const auto config = resolve_json(json::object(), name);
    CHECK(config["studio"]["architecture"] == "sit");
    CHECK(config["studio"]["sit_size"] == setup.first);
    CHECK(config["studio"]["patch_size"] == 2);
    CHECK(config["crepa_block_index"] == setup.second);  // the REPA code's encoder_depth minus one
    CHECK(config["resolution"] == 256);
    CHECK(config["crepa_encoder"] == "dinov2_vitb14");
    CHECK(config["crepa_encoder_image_size"] == 224);
    CHECK(config["crepa_lambda"] == 0.5);
    CHECK(config["learning_rate"] == 1e-4);
    CHECK(config["train_batch_size"] == 256);
    CHECK(config["use_ema"] == true);
    CHECK(config["ema_decay"] == 0.9999);
    CHECK(config["studio"]["objective"] == "linear");
  }
}

TEST_CASE("the demo preset is a tiny SiT with a random encoder") {
  const auto config = resolve_json(json::object(), "demo");
  CHECK(config["studio"]["architecture"] == "sit");
  CHECK(config["studio"]["sit_size"] == "custom");
  CHECK(config["studio"]["encoder_random_init"] == true);
  CHECK(config["resolution"] == 32);
  CHECK(config["crepa_enabled"] == true);
  CHECK(config["crepa_encoder"] == "dinov2_vits14");
  CHECK(config["crepa_block_index"].get<int>() < config["studio"]["depth"].get<int>());
}

TEST_CASE("a preset file by path, and an unknown preset named with a suggestion") {
  repa::test::ScratchDir dir;
  repa::test::write_bytes(dir.file("mine.json"), R"({"description": "d", "config": {"crepa_lambda": 0.3}})");
  CHECK(resolve_json(json::object(), dir.file("mine.json"))["crepa_lambda"] == 0.3);
  CHECK_THROWS_WITH(find_preset("sit-xl"), doctest::Contains("did you mean \"sit-xl-2\""));
}
