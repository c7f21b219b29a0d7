// An SDXL family run reading a multidatabackend.json trains on SimpleTuner's aspect buckets: images of three
// aspect ratios, each batch from one bucket with latents of that bucket's size, a too-small image named, time_ids
// from each image's real geometry, and a resume that reproduces the losses exactly.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/data/aspect_buckets.h"
#include "core/data/image.h"
#include "core/train/tiny_pipeline.h"
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
