// An SDXL family run reading a multidatabackend.json trains on SimpleTuner's aspect buckets: images of three
// aspect ratios, each batch from one bucket with latents of that bucket's size, a too-small image named, time_ids
// from each image's real geometry, and a resume that reproduces the losses exactly. A family run on the studio's
// own studio.dataset_dir buckets the same way with SimpleTuner's dataset defaults (pixel_area, no crop) at the
// run's resolution, the alignment lowered so that the square bucket keeps a resolution under 64 px.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/data/aspect_buckets.h"
#include "core/data/image.h"
#include "core/train/tiny_pipeline.h"
#include "core/train/training_data.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"
#include "tests/run_files.h"

using namespace repa;
using namespace repa::train;
namespace fs = std::filesystem;
using repa::test::events_of;
using repa::test::losses_of;
using repa::test::contains;

namespace {

data::Image shape_image(int width, int height, int seed) {
  data::Image image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const bool inside = (x - width / 3) * (x - width / 3) + (y - height / 2) * (y - height / 2) < 150;
      auto* p = &image.pixels[(static_cast<std::size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(inside ? 220 : 20 + seed * 9);
      p[1] = static_cast<uint8_t>(inside ? 40 + seed * 20 : 30);
      p[2] = static_cast<uint8_t>((x + y) % 64);
    }
  return image;
}

struct Setup {
  test::ScratchDir dir;
  Setup() {
    int n = 0;
    auto add = [&](int w, int h, int count, const std::string& caption) {
      for (int k = 0; k < count; ++k, ++n) {
        const std::string stem = dir.file("pics/img" + std::to_string(10 + n));
        data::write_png(stem + ".png", shape_image(w, h, n));
        std::ofstream(stem + ".txt") << caption;
      }
    };
    add(128, 64, 4, "a wide red disc");
    add(64, 128, 4, "a tall red disc");
    add(80, 80, 4, "a square red disc");
    add(40, 40, 1, "too small to train");  // img22.png
    const nlohmann::json datasets = nlohmann::json::array({{{"id", "pics"},
                                                            {"type", "local"},
                                                            {"instance_data_dir", dir.file("pics")},
                                                            {"caption_strategy", "textfile"},
                                                            {"resolution", 64},
                                                            {"resolution_type", "pixel"},
                                                            {"crop", true},
                                                            {"crop_style", "center"},
                                                            {"crop_aspect", "preserve"},
                                                            {"minimum_image_size", 48}}});
    std::ofstream(dir.file("multidatabackend.json")) << datasets.dump(2);
    write_tiny_sd_pipeline(dir.file("sdxl"), "sdxl", test::fixture_path("tokenizers/clip"), 21);
  }
  nlohmann::json config(const std::string& name, int64_t steps) const {
    return {{"model_family", "sdxl"},
            {"pretrained_model_name_or_path", dir.file("sdxl")},
            {"data_backend_config", dir.file("multidatabackend.json")},
            {"output_dir", dir.file("runs")},
            {"resolution", 64},
            {"max_train_steps", steps},
            {"train_batch_size", 2},
            {"learning_rate", 1e-3},
            {"lr_scheduler", "constant"},
            {"seed", 7},
            {"max_grad_norm", 1.0},
            {"checkpoint_step_interval", 3},
            {"caption_dropout_probability", 0.3},
            {"validation_step_interval", 0},
            {"validation_num_inference_steps", 1},
            {"validation_prompt", "a wide red disc"},
            {"urepa_enabled", true},
            {"urepa_model", "dinov2_vits14"},
            {"urepa_encoder_image_size", 28},
            {"studio",
             {{"class_labels", false},
              {"run_name", name},
              {"encoder_random_init", true},
              {"device", "cpu"},
              {"num_workers", 0}}}};
  }
};

}  // namespace

TEST_CASE("sdxl on aspect buckets: one bucket per batch, real time_ids, too-small named, exact resume") {
  torch::set_num_threads(1);
  Setup s;
  std::vector<double> full;
  {
    Trainer trainer(s.config("xl", 6));
    const auto& buckets = trainer.training_data().buckets;
    REQUIRE(buckets.has_value());
    REQUIRE(buckets->geometry.size() == 12);
    // time_ids: the intermediary size, the crop corner and the target of each image, as SimpleTuner's collate.
    const auto ids = trainer.time_ids();
    REQUIRE(ids.size(0) == 12);
    for (int64_t i = 0; i < 12; ++i) {
      const auto expected = data::sdxl_time_ids(buckets->geometry[static_cast<std::size_t>(i)]);
      for (int k = 0; k < 6; ++k) CHECK(ids[i][k].item<double>() == static_cast<double>(expected[std::size_t(k)]));
    }
    CHECK(ids[0].equal(torch::tensor({64.0f, 128.0f, 0.0f, 0.0f, 64.0f, 128.0f})));  // 128x64: no crop
    CHECK(ids[8].equal(torch::tensor({64.0f, 64.0f, 0.0f, 0.0f, 64.0f, 64.0f})));    // 80x80 resized to 64x64
    std::set<std::string> seen;
    int batches = 0;
    trainer.set_batch_observer([&](const data::Batch& batch) {
      ++batches;
      const auto& first = buckets->geometry.at(static_cast<std::size_t>(batch.indices.at(0)));
      seen.insert(first.bucket);
      for (auto i : batch.indices) CHECK(buckets->geometry.at(static_cast<std::size_t>(i)).bucket == first.bucket);
      // Latents of the bucket's size: the tiny VAE halves each side.
      const auto& mean = batch.cached.at("mean");
      CHECK(mean.size(-2) * 2 == first.target_height);
      CHECK(mean.size(-1) * 2 == first.target_width);
    });
    REQUIRE(trainer.run() == 0);
    CHECK(batches == 6);
    CHECK(seen == std::set<std::string>{"0.5", "1.0", "2.0"});
    full = losses_of(trainer.run_directory().path());
    bool named = false;
    for (const auto& e : events_of(trainer.run_directory().path(), "log"))
      named |= contains(e.value("message", ""), "img22.png") && contains(e.value("message", ""), "minimum_image_size");
    CHECK(named);
  }
  REQUIRE(full.size() == 6);
  for (double loss : full) CHECK(std::isfinite(loss));
  fs::rename(s.dir.file("runs/xl/metrics.jsonl"), s.dir.file("full-metrics.jsonl"));
  auto again = s.config("xl", 6);
  again["resume_from_checkpoint"] = s.dir.file("runs/xl/checkpoints/checkpoint-3");
  {
    Trainer resumed(again);
    REQUIRE(resumed.run() == 0);
    bool reused = false;
    for (const auto& e : events_of(resumed.run_directory().path(), "log"))
      reused |=
          contains(e.value("message", ""), "latent cache") && contains(e.value("message", ""), "12 reused, 0 computed");
    CHECK(reused);
  }
  const auto tail = losses_of(s.dir.file("runs/xl"));
  REQUIRE(tail.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(tail[static_cast<std::size_t>(i)] == full[static_cast<std::size_t>(3 + i)]);

  // A changed crop setting keys new caches: the latents and teacher tokens are computed again.
  auto datasets = nlohmann::json::parse(std::ifstream(s.dir.file("multidatabackend.json")));
  datasets[0]["crop_style"] = "random";
  std::ofstream(s.dir.file("multidatabackend.json")) << datasets.dump(2);
  Trainer changed(s.config("changed", 1));
  int recomputed = 0;
  for (const auto& e : events_of(changed.run_directory().path(), "log"))
    recomputed += contains(e.value("message", ""), "0 reused, 12 computed");
  CHECK(recomputed == 2);  // the latent cache and the teacher-token cache
}

namespace {

// Four wide (3:1) and four tall (1:3) captioned images in a plain folder, and a tiny SDXL pipeline.
struct FolderSetup {
  test::ScratchDir dir;
  FolderSetup() {
    for (int n = 0; n < 8; ++n) {
      const bool wide = n % 2 == 0;  // interleaved, so the folder's order mixes the buckets
      const std::string stem = dir.file("photos/photo" + std::to_string(10 + n));
      data::write_png(stem + ".png", wide ? shape_image(96, 32, n) : shape_image(32, 96, n));
      std::ofstream(stem + ".txt") << (wide ? "a wide red disc" : "a tall red disc");
    }
    write_tiny_sd_pipeline(dir.file("sdxl"), "sdxl", test::fixture_path("tokenizers/clip"), 21);
  }
  nlohmann::json config(const std::string& name, int64_t steps) const {
    return {{"model_family", "sdxl"},
            {"pretrained_model_name_or_path", dir.file("sdxl")},
            {"output_dir", dir.file("runs")},
            {"resolution", 32},
            {"max_train_steps", steps},
            {"train_batch_size", 2},
            {"learning_rate", 1e-3},
            {"lr_scheduler", "constant"},
            {"seed", 11},
            {"max_grad_norm", 1.0},
            {"checkpoint_step_interval", 3},
            {"caption_strategy", "textfile"},
            {"validation_step_interval", 0},
            {"validation_num_inference_steps", 1},
            {"validation_prompt", "a wide red disc"},
            {"urepa_enabled", true},
            {"urepa_model", "dinov2_vits14"},
            {"urepa_encoder_image_size", 28},
            {"studio",
             {{"dataset_dir", dir.file("photos")},
              {"class_labels", false},
              {"run_name", name},
              {"encoder_random_init", true},
              {"device", "cpu"},
              {"num_workers", 0}}}};
  }
};

bool logged(const std::string& run, const std::string& a, const std::string& b) {
  for (const auto& e : events_of(run, "log"))
    if (contains(e.value("message", ""), a) && contains(e.value("message", ""), b)) return true;
  return false;
}

}  // namespace

TEST_CASE("sdxl on studio.dataset_dir: SimpleTuner's default buckets at the run's resolution, exact resume") {
  torch::set_num_threads(1);
  FolderSetup s;
  CHECK(uses_aspect_buckets(s.config("x", 1)));
  CHECK_FALSE(uses_aspect_buckets({{"studio", {{"dataset_dir", s.dir.file("photos")}, {"architecture", "sit"}}}}));
  std::vector<double> full;
  {
    Trainer trainer(s.config("xl", 6));
    const auto& buckets = trainer.training_data().buckets;
    REQUIRE(buckets.has_value());
    CHECK_FALSE(trainer.training_data().backend.has_value());
    // SimpleTuner's defaults: pixel_area (32 px is 0.001024 MP), no crop, random crop corner; alignment 32.
    CHECK(buckets->settings.resolution_type == data::ResolutionType::Area);
    CHECK(buckets->settings.resolution == doctest::Approx(32.0 * 32.0 / 1e6));
    CHECK_FALSE(buckets->settings.crop);
    CHECK(buckets->settings.crop_style == data::CropStyle::Random);
    CHECK(buckets->settings.alignment == 32);
    REQUIRE(buckets->geometry.size() == 8);
    const auto ids = trainer.time_ids();
    REQUIRE(ids.size(0) == 8);
    for (std::size_t i = 0; i < 8; ++i) {
      CAPTURE(i);
      const auto& g = buckets->geometry[i];
      const bool wide = g.original_width > g.original_height;
      CHECK(g.original_width * g.original_height == 96 * 32);
      // A 3:1 image keeps its whole height and is cut to 64x32 at a random column: bucket 2.0 (0.5 when tall).
      CHECK(g.bucket == (wide ? "2.0" : "0.5"));
      CHECK(g.target_width == (wide ? 64 : 32));
      CHECK(g.target_height == (wide ? 32 : 64));
      CHECK(g.resize_width == (wide ? 96 : 32));
      CHECK(g.resize_height == (wide ? 32 : 96));
      CHECK((wide ? g.crop_top : g.crop_left) == 0);
      CHECK((wide ? g.crop_left : g.crop_top) <= 32);
      // time_ids: the intermediary size, the crop corner and the target, as SimpleTuner's collate.
      const auto expected = data::sdxl_time_ids(g);
      for (int k = 0; k < 6; ++k)
        CHECK(ids[int64_t(i)][k].item<double>() == static_cast<double>(expected[std::size_t(k)]));
      CHECK(ids[int64_t(i)][0].item<double>() == (wide ? 32.0 : 96.0));
      CHECK(ids[int64_t(i)][1].item<double>() == (wide ? 96.0 : 32.0));
    }
    std::set<std::string> seen;
    int batches = 0;
    trainer.set_batch_observer([&](const data::Batch& batch) {
      ++batches;
      const auto& first = buckets->geometry.at(static_cast<std::size_t>(batch.indices.at(0)));
      seen.insert(first.bucket);
      for (auto i : batch.indices) CHECK(buckets->geometry.at(static_cast<std::size_t>(i)).bucket == first.bucket);
      const auto& mean = batch.cached.at("mean");  // the tiny VAE halves each side
      CHECK(mean.size(-2) * 2 == first.target_height);
      CHECK(mean.size(-1) * 2 == first.target_width);
    });
    REQUIRE(trainer.run() == 0);
    CHECK(batches == 6);
    CHECK(seen == std::set<std::string>{"0.5", "2.0"});
    const auto run = trainer.run_directory().path();
    CHECK(logged(run, "not a multiple of sdxl's aspect_bucket_alignment 64", "align to 32 px"));
    CHECK(logged(run, "aspect buckets: ", "0.5 (32x64): 4, 2.0 (64x32): 4"));
    full = losses_of(run);
  }
  REQUIRE(full.size() == 6);
  for (double loss : full) CHECK(std::isfinite(loss));
  fs::rename(s.dir.file("runs/xl/metrics.jsonl"), s.dir.file("full-metrics.jsonl"));
  auto again = s.config("xl", 6);
  again["resume_from_checkpoint"] = s.dir.file("runs/xl/checkpoints/checkpoint-3");
  {
    Trainer resumed(again);
    REQUIRE(resumed.run() == 0);
    CHECK(logged(resumed.run_directory().path(), "latent cache", "8 reused, 0 computed"));
  }
  const auto tail = losses_of(s.dir.file("runs/xl"));
  REQUIRE(tail.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(tail[static_cast<std::size_t>(i)] == full[static_cast<std::size_t>(3 + i)]);

  // The run's resolution_type: pixel keeps the short edge at 32, so a 3:1 image trains whole in bucket 3.0.
  auto pixel = s.config("pixel", 1);
  pixel["resolution_type"] = "pixel";
  {
    Trainer trainer(pixel);
    const auto& g = trainer.training_data().buckets->geometry;
    std::set<std::string> keys;
    for (const auto& one : g)
      keys.insert(one.bucket + " " + std::to_string(one.target_width) + "x" + std::to_string(one.target_height));
    CHECK(keys == std::set<std::string>{"0.33 32x96", "3.0 96x32"});
  }
  // area reads resolution as megapixels: refused on studio.dataset_dir, whose resolution is a pixel edge.
  auto area = s.config("area", 1);
  area["resolution_type"] = "area";
  CHECK(contains(repa::test::error_of([&] { Trainer t(area); }), "resolution_type \"area\""));
}
