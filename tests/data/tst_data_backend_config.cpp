// SimpleTuner's multidatabackend.json read for a native run: the fields honoured (folder, captions,
// resolution, repeats, minimum_image_size, crop), and the keys named by a warning or a refusal.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/config/export.h"
#include "core/data/data_backend_config.h"
#include "core/data/image.h"
#include "tests/test_support.h"

using namespace repa;
using namespace repa::data;
using repa::test::contains;
using repa::test::error_of;

namespace {

std::string write_config(const test::ScratchDir& dir, const nlohmann::json& datasets) {
  test::write_bytes(dir.file("multidatabackend.json"), datasets.dump(2));
  return dir.file("multidatabackend.json");
}

nlohmann::json image_dataset(const std::string& folder) {
  // What the studio's export writes.
  return {{"id", "studio-dataset"},
          {"type", "local"},
          {"dataset_type", "image"},
          {"instance_data_dir", folder},
          {"caption_strategy", "textfile"},
          {"resolution", 32},
          {"resolution_type", "pixel"},
          {"minimum_image_size", 0},
          {"crop", true},
          {"crop_style", "center"},
          {"crop_aspect", "square"},
          {"repeats", 2}};
}

bool any_contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& line : lines)
    if (contains(line, part)) return true;
  return false;
}

}  // namespace

TEST_CASE("multidatabackend.json: the image dataset's fields and the text-embeds cache folder") {
  test::ScratchDir dir;
  auto datasets = nlohmann::json::array(
      {image_dataset("/data/shapes"),
       {{"id", "old"}, {"dataset_type", "image"}, {"disabled", true}, {"instance_data_dir", "/elsewhere"}},
       {{"id", "text"},
        {"dataset_type", "text_embeds"},
        {"default", true},
        {"type", "local"},
        {"cache_dir", "/cache/text"}}});
  datasets[0]["instance_prompt"] = "sks";
  datasets[0]["prepend_instance_prompt"] = true;
  const auto config = read_data_backend_config(write_config(dir, datasets), 32);
  CHECK(config.image.id == "studio-dataset");
  CHECK(config.image.instance_data_dir == "/data/shapes");
  CHECK(config.image.captions.strategy == CaptionStrategy::Textfile);
  CHECK(config.image.captions.instance_prompt == "sks");
  CHECK(config.image.captions.prepend_instance_prompt);
  CHECK(config.image.repeats == 2);
  CHECK(config.text_embeds_cache_dir == "/cache/text");
  CHECK(config.warnings.empty());

  datasets[0]["only_instance_prompt"] = true;
  CHECK(read_data_backend_config(write_config(dir, datasets), 32).image.captions.strategy ==
        CaptionStrategy::InstancePrompt);
}

TEST_CASE("multidatabackend.json: what the trainer approximates is a warning naming the key and the dataset") {
  test::ScratchDir dir;
  auto dataset = image_dataset("/data/shapes");
  dataset["crop_style"] = "random";
  dataset["crop"] = false;
  dataset["cache_dir_vae"] = "/cache/vae";
  dataset["caption_filter_list"] = "filters.txt";
  const auto config = read_data_backend_config(write_config(dir, nlohmann::json::array({dataset})), 32);
  CHECK(config.warnings.size() == 4);
  CHECK(any_contains(config.warnings, "(\"studio-dataset\"): crop_style \"random\""));
  CHECK(any_contains(config.warnings, "crop false"));
  CHECK(any_contains(config.warnings, "cache_dir_vae"));
  CHECK(any_contains(config.warnings, "\"caption_filter_list\" = \"filters.txt\" is not used"));
}

TEST_CASE("multidatabackend.json: what would change what trains is refused, naming file, dataset and key") {
  test::ScratchDir dir;
  auto refused = [&](const std::string& key, const nlohmann::json& value) {
    auto dataset = image_dataset("/data/shapes");
    dataset[key] = value;
    return error_of([&] { read_data_backend_config(write_config(dir, nlohmann::json::array({dataset})), 32); });
  };
  CHECK(contains(refused("resolution_type", "area"), "resolution_type \"area\""));
  CHECK(contains(refused("resolution", 64), "resolution 64 differs from the run's resolution 32"));
  CHECK(contains(refused("crop_aspect", "preserve"), "crop_aspect \"preserve\""));
  CHECK(contains(refused("type", "aws"), "type \"aws\""));
  const auto parquet = refused("caption_strategy", "parquet");
  CHECK(contains(parquet, "multidatabackend.json' dataset 0 (\"studio-dataset\") caption_strategy \"parquet\""));
  CHECK(contains(parquet, "convert"));
  CHECK(contains(refused("repeats", "two"), "\"repeats\" must be a number"));
  CHECK(contains(error_of([&] {
                   read_data_backend_config(
                       write_config(dir, nlohmann::json::array({image_dataset("/a"), image_dataset("/b")})), 32);
                 }),
                 "second enabled image dataset"));
  CHECK(
      contains(error_of([&] {
                 read_data_backend_config(write_config(dir, nlohmann::json::array({{{"dataset_type", "video"}}})), 32);
               }),
               "dataset_type \"video\""));
  CHECK(contains(error_of([&] { read_data_backend_config(write_config(dir, nlohmann::json::object()), 32); }),
                 "expected a JSON list"));
  CHECK(contains(error_of([&] { read_data_backend_config(dir.file("none.json"), 32); }), "cannot be read"));
}

TEST_CASE("repeats and minimum_image_size act on the folder as in SimpleTuner") {
  test::ScratchDir dir;
  write_png(dir.file("big.png"), Image(40, 36));
  write_png(dir.file("small.png"), Image(40, 20));
  auto folder = scan_image_folder(dir.path().string(), false);
  ImageDatasetBackend backend;
  backend.minimum_image_size = 32;
  backend.repeats = 2;
  CHECK(apply_dataset_backend(folder, backend) == 1);
  REQUIRE(folder.images.size() == 3);  // big.png, seen 1 + 2 times
  for (const auto& image : folder.images) CHECK(contains(image.path, "big.png"));
  backend.minimum_image_size = 64;
  CHECK(contains(error_of([&] { apply_dataset_backend(folder, backend); }), "smaller than minimum_image_size 64"));
}

TEST_CASE("the studio's export writes a multidatabackend.json that a native run reads back unchanged") {
  test::ScratchDir dir;
  const nlohmann::json resolved = {{"resolution", 32},
                                   {"caption_strategy", "textfile"},
                                   {"instance_prompt", "sks"},
                                   {"prepend_instance_prompt", true},
                                   {"studio", {{"dataset_dir", "/data/shapes"}}}};
  const auto exported = config::write_simpletuner_export(resolved, dir.file("export"));
  const auto config = read_data_backend_config(exported.config.at("data_backend_config").get<std::string>(), 32);
  CHECK(config.image.instance_data_dir == "/data/shapes");
  CHECK(config.image.captions.strategy == CaptionStrategy::Textfile);
  CHECK(config.image.captions.instance_prompt == "sks");
  CHECK(config.image.captions.prepend_instance_prompt);
  CHECK(config.image.repeats == 0);
  REQUIRE(config.warnings.size() == 1);  // the export's own VAE cache folder, which the studio does not use
  CHECK(contains(config.warnings[0], "cache_dir_vae"));
  CHECK(contains(config.text_embeds_cache_dir, "simpletuner/text"));

  const nlohmann::json plain = {{"resolution", 32}, {"studio", {{"dataset_dir", "/data/shapes"}}}};
  const auto by_name = config::write_simpletuner_export(plain, dir.file("plain"));
  CHECK(read_data_backend_config(by_name.config.at("data_backend_config").get<std::string>(), 32)
            .image.captions.strategy == CaptionStrategy::Filename);
}
