// validate() compares the teacher's token grid with the backbone's and warns when the aligner would have to
// resample, naming the encoder size that makes them equal; the native presets choose matching sizes.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "core/config/alignment_grid.h"
#include "core/config/loader.h"
#include "core/config/presets.h"
#include "tests/test_support.h"

using namespace repa::config;
namespace fs = std::filesystem;

namespace {

// A diffusers VAE config with the SD VAE's four levels (/8); the grid check reads nothing else.
std::string sd_vae_folder(const repa::test::ScratchDir& dir) {
  fs::create_directories(dir.file("sd-vae"));
  repa::test::write_bytes(dir.file("sd-vae/config.json"),
                          nlohmann::json{{"block_out_channels", {128, 256, 512, 512}}, {"latent_channels", 4}}.dump());
  return dir.file("sd-vae");
}

nlohmann::json sit_b2(const std::string& vae_path, int64_t encoder_size) {
  return resolve_json({{"resolution", 256},
                       {"crepa_enabled", true},
                       {"crepa_block_index", 3},
                       {"crepa_encoder", "dinov2_vitg14"},
                       {"crepa_encoder_image_size", encoder_size},
                       {"studio", {{"architecture", "sit"}, {"patch_size", 2}, {"vae_path", vae_path}}}});
}

std::vector<Problem> grid_warnings(const nlohmann::json& config) {
  std::vector<Problem> out;
  for (auto& p : validate(config))
    if (p.message.find("token grid") != std::string::npos) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("SimpleTuner's 518 px teacher on a SiT/2 at 256 px: 37×37 against 16×16, and 224 px would match") {
  repa::test::ScratchDir dir;
  const auto config = sit_b2(sd_vae_folder(dir), 518);
  const auto grids = alignment_grids(config);
  REQUIRE(grids);
  CHECK(grids->teacher == 37);
  CHECK(grids->backbone == 16);
  CHECK(grids->matching_encoder_size() == 224);
  CHECK(grids->size_key == "crepa_encoder_image_size");

  const auto warnings = grid_warnings(config);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].severity == Severity::Warning);
  CHECK(warnings[0].key == "crepa_encoder_image_size");
  const auto& m = warnings[0].message;
  CHECK(m.find("37×37 (dinov2_vitg14 at 518 px / 14)") != std::string::npos);
  CHECK(m.find("16×16 (256 px / 8 (VAE) / patch 2)") != std::string::npos);
  CHECK(m.find("resamples the teacher's tokens to 16×16 (bilinear, no antialias)") != std::string::npos);
  CHECK(m.find("crepa_encoder_image_size 224 (16 × 14) makes them equal") != std::string::npos);

  // At 224 px nothing is said; the warning never blocks a run or an export.
  CHECK(grid_warnings(sit_b2(sd_vae_folder(dir), 224)).empty());
  CHECK_NOTHROW(resolve_json(config));
}

TEST_CASE("grid warnings: pixel space, U-REPA's mid block, REPA preprocessing, pooling; nothing for CLS or families") {
  repa::test::ScratchDir dir;
  SUBCASE("a SiT on 256 px pixels has 128×128 tokens; a VAE would give the teacher's 16×16") {
    const auto warnings = grid_warnings(sit_b2("", 224));
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].message.find("backbone's is 128×128 (256 px / patch 2)") != std::string::npos);
    CHECK(warnings[0].message.find("resamples the backbone's tokens to 16×16") != std::string::npos);
    CHECK(warnings[0].message.find("studio.vae_path") != std::string::npos);
  }
  SUBCASE("U-REPA on the tiny UNet: the mid block is half the input side; the key is urepa_encoder_image_size") {
    const auto config = resolve_json({{"resolution", 32},
                                      {"urepa_enabled", true},
                                      {"urepa_model", "dinov2_vits14"},
                                      {"urepa_encoder_image_size", 518},
                                      {"studio", {{"architecture", "unet2d"}}}});
    const auto grids = alignment_grids(config);
    REQUIRE(grids);
    CHECK(grids->backbone == 16);
    CHECK(grids->teacher == 37);
    const auto warnings = grid_warnings(config);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].key == "urepa_encoder_image_size");
    CHECK(warnings[0].message.find("urepa_encoder_image_size 224") != std::string::npos);
    CHECK(warnings[0].message.find("UNet mid block") != std::string::npos);
  }
  SUBCASE("a UNet config file decides the mid block's size: four levels halve three times") {
    repa::test::write_bytes(dir.file("unet.json"), nlohmann::json{{"down_block_types", {"A", "B", "C", "D"}}}.dump());
    const auto config =
        resolve_json({{"resolution", 64},
                      {"urepa_enabled", true},
                      {"urepa_encoder_image_size", 112},
                      {"studio", {{"architecture", "unet2d"}, {"unet_config", dir.file("unet.json")}}}});
    const auto grids = alignment_grids(config);
    REQUIRE(grids);
    CHECK(grids->backbone == 8);
    CHECK(grids->teacher == 8);
    CHECK(grid_warnings(config).empty());
  }
  SUBCASE("REPA preprocessing fixes the encoder size at 224 px per 256: the remedy is SimpleTuner's resize") {
    auto config = sit_b2("", 518);
    config["studio"]["encoder_preprocessing"] = "repa";
    config["studio"]["patch_size"] = 4;
    config["studio"]["vae_path"] = sd_vae_folder(dir);
    const auto warnings = grid_warnings(config);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].key == "studio.encoder_preprocessing");
    CHECK(warnings[0].message.find("16×16 (dinov2_vitg14 at 224 px / 14, REPA preprocessing: 224 px per 256 px)") !=
          std::string::npos);
    CHECK(warnings[0].message.find("\"simpletuner\" with crepa_encoder_image_size 112 makes them equal") !=
          std::string::npos);
  }
  SUBCASE("crepa_spatial_align false pools instead of resampling") {
    auto config = sit_b2(sd_vae_folder(dir), 518);
    config["crepa_spatial_align"] = false;
    const auto warnings = grid_warnings(config);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].message.find("mean-pooled to one token") != std::string::npos);
  }
  SUBCASE("CLS teacher tokens, a SimpleTuner family, a TorchScript teacher or no alignment: nothing to compare") {
    auto config = sit_b2("", 518);
    config["studio"]["teacher_tokens"] = "cls";
    CHECK_FALSE(alignment_grids(config));
    config = sit_b2("", 518);
    config["studio"]["encoder_weights"] = "encoder.pt";
    CHECK_FALSE(alignment_grids(config));
    config = sit_b2("", 518);
    config["crepa_enabled"] = false;
    CHECK_FALSE(alignment_grids(config));
    config = sit_b2("", 518);
    config["model_family"] = "flux";
    CHECK_FALSE(alignment_grids(config));
  }
}

TEST_CASE("the presets the studio trains natively give the teacher the backbone's own grid") {
  repa::test::ScratchDir dir;
  const auto vae = sd_vae_folder(dir);
  for (const char* name : {"demo", "sit-b-2", "sit-l-2", "sit-xl-2"}) {
    CAPTURE(name);
    // The SiT presets train on SD-VAE latents (their notes ask for studio.vae_path); the demo on pixels.
    const bool latent = std::string(name) != "demo";
    const auto config =
        resolve_json(latent ? nlohmann::json{{"studio", {{"vae_path", vae}}}} : nlohmann::json::object(), name);
    const auto grids = alignment_grids(config);
    REQUIRE(grids);
    CHECK(grids->teacher == grids->backbone);
    CHECK(grid_warnings(config).empty());
  }
  CHECK(alignment_grids(resolve_json(nlohmann::json::object(), "demo"))->backbone == 8);
}

TEST_CASE("studio.teacher_input vae_decode without a VAE is an error naming the key") {
  const auto problems = validate(resolve_json({{"studio", {{"teacher_input", "pixels"}}}}));
  for (const auto& p : problems) CHECK(p.key != "studio.teacher_input");
  auto report = load_config({{"crepa_enabled", true}, {"studio", {{"teacher_input", "vae_decode"}}}}, "", {});
  bool found = false;
  for (const auto& p : report.problems)
    if (p.key == "studio.teacher_input") {
      found = true;
      CHECK(p.severity == Severity::Error);
      CHECK(p.message.find("studio.vae_path is empty") != std::string::npos);
    }
  CHECK(found);
}
