// A tiny text-conditioned UNet trained from the demo dataset's captions through the text-embedding cache:
// the loss falls, the encoders run once per distinct caption before the first step and never again (not in
// the second epoch, not in a second run on the same cache), captions steer the prediction, and
// caption_dropout_probability swaps in the empty caption at its rate; U-REPA taps the text UNet's mid block.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/base/error.h"
#include "core/data/demo_dataset.h"
#include "core/text/random_text_encoder.h"
#include "core/text/text_conditioning.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"
#include "tests/run_files.h"

using namespace repa;
using namespace repa::train;
namespace fs = std::filesystem;
using repa::test::losses_of;
using repa::test::mean;
using repa::test::contains;
using repa::test::error_of;

namespace {

void write_tiny_clip_pipeline(const std::string& root) {
  fs::create_directories(root + "/tokenizer");
  for (const char* name : {"vocab.json", "merges.txt"})
    fs::copy_file(test::fixture_path(std::string("tokenizers/clip/") + name), root + "/tokenizer/" + name);
  text::write_random_clip_text_encoder(root + "/text_encoder",
                                       {{"vocab_size", 49408},
                                        {"hidden_size", 16},
                                        {"intermediate_size", 32},
                                        {"num_hidden_layers", 2},
                                        {"num_attention_heads", 2},
                                        {"max_position_embeddings", 77},
                                        {"eos_token_id", 2}},
                                       5);
}

nlohmann::json text_config(const test::ScratchDir& dir, const std::string& name, int64_t steps) {
  return {{"output_dir", dir.file("runs")},
          {"resolution", 16},
          {"max_train_steps", steps},
          {"train_batch_size", 4},
          {"learning_rate", 2e-3},
          {"lr_scheduler", "constant"},
          {"seed", 11},
          {"max_grad_norm", 1.0},
          {"validation_step_interval", 0},
          {"validation_num_inference_steps", 2},
          {"caption_strategy", "textfile"},
          {"caption_dropout_probability", 0.1},
          {"studio",
           {{"dataset_dir", dir.file("data")},
            {"class_labels", false},
            {"run_name", name},
            {"architecture", "unet2d_condition"},
            {"text_encoder_path", dir.file("pipe")},
            {"text_conditioning", "sd1x"},
            {"device", "cpu"},
            {"num_workers", 0}}}};
}

}  // namespace

TEST_CASE("a tiny text-conditioned UNet trains from captions through the cache; encoders run once") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  data::generate_demo_dataset(dir.file("data"), {2, 16, 4});  // 12 captioned images
  write_tiny_clip_pipeline(dir.file("pipe"));

  const int64_t before = text::TextEmbedder::prompts_encoded();
  Trainer trainer(text_config(dir, "text", 30));
  const auto* captions = trainer.captions();
  REQUIRE(captions != nullptr);
  std::set<std::string> distinct = {""};
  for (const auto& image : captions->captions())
    for (const auto& caption : image) distinct.insert(caption);
  CHECK(captions->fill_report().computed == static_cast<int64_t>(distinct.size()));
  const int64_t after_setup = text::TextEmbedder::prompts_encoded();
  CHECK(after_setup - before == static_cast<int64_t>(distinct.size()));
  CHECK(captions->width() == 16);
  CHECK(contains(trainer.backbone().describe(), "cross-attention to 16-wide text states"));

  // 30 steps of 4 images over 12 images: 10 epochs, and not one more prompt encoded.
  REQUIRE(trainer.run() == 0);
  CHECK(text::TextEmbedder::prompts_encoded() == after_setup);
  const auto losses = losses_of(trainer.run_directory().path());
  REQUIRE(losses.size() == 30);
  INFO("first steps " << mean(losses, 0, 5) << ", last steps " << mean(losses, 25, 30));
  CHECK(mean(losses, 25, 30) < 0.8 * mean(losses, 0, 5));

  // The prediction depends on the caption.
  torch::NoGradGuard no_grad;
  trainer.backbone().module().eval();
  const auto x = torch::randn({1, 3, 16, 16});
  const auto t = torch::full({1}, 0.5);
  int64_t step = 0;
  while (captions->caption_at(0, step).empty()) ++step;
  Conditioning empty, captioned;
  empty.text = captions->unconditional().at("hidden");
  captioned.text = captions->batch({0}, step).at("hidden");
  CHECK(!torch::equal(empty.text, captioned.text));
  const auto a = trainer.backbone().forward_conditioned(x, t, empty, false).prediction;
  const auto b = trainer.backbone().forward_conditioned(x, t, captioned, false).prediction;
  CHECK((a - b).abs().max().item<double>() > 1e-5);
  CHECK(fs::exists(captions->cache_folder() + "/settings.json"));

  // A second run on the same cache encodes nothing and never loads the encoders.
  Trainer again(text_config(dir, "again", 1));
  CHECK(again.captions()->fill_report().computed == 0);
  CHECK(again.captions()->fill_report().reused == static_cast<int64_t>(distinct.size()));
  CHECK(again.captions()->fill_report().encoder_parameters == 0);
  CHECK(text::TextEmbedder::prompts_encoded() == after_setup);
}

TEST_CASE("caption dropout gives the empty caption at its rate, the same draw on every replay") {
  test::ScratchDir dir;
  data::generate_demo_dataset(dir.file("data"), {1, 16, 4});
  write_tiny_clip_pipeline(dir.file("pipe"));
  auto config = text_config(dir, "dropout", 1);
  config["caption_dropout_probability"] = 0.25;
  Trainer trainer(config);
  const auto* captions = trainer.captions();
  int dropped = 0, total = 0;
  for (int64_t step = 0; step < 200; ++step)
    for (int64_t index = 0; index < 6; ++index, ++total) {
      const auto caption = captions->caption_at(index, step);
      CHECK(caption == captions->caption_at(index, step));
      if (caption.empty())
        ++dropped;
      else
        CHECK(caption == captions->captions()[static_cast<std::size_t>(index)][0]);
    }
  const double rate = static_cast<double>(dropped) / total;
  CHECK(rate > 0.2);
  CHECK(rate < 0.3);
  // A dropped caption's states are the empty caption's.
  for (int64_t step = 0; step < 50; ++step)
    if (captions->caption_at(2, step).empty()) {
      CHECK(torch::equal(captions->batch({2}, step).at("hidden"), captions->unconditional().at("hidden")));
      break;
    }
}

TEST_CASE("a text-conditioned run names what it lacks") {
  test::ScratchDir dir;
  data::generate_demo_dataset(dir.file("data"), {1, 16, 4});
  auto config = text_config(dir, "bad", 1);
  config["studio"]["text_encoder_path"] = "";
  CHECK(contains(error_of([&] { Trainer t(config); }), "studio.text_encoder_path is empty"));
  config["studio"]["text_encoder_path"] = dir.file("pipe");
  CHECK(contains(error_of([&] { Trainer t(config); }), dir.file("pipe/text_encoder")));
  write_tiny_clip_pipeline(dir.file("pipe"));
  config["caption_strategy"] = "parquet";
  CHECK(contains(error_of([&] { Trainer t(config); }), "caption_strategy \"parquet\" is not supported"));
  config["caption_strategy"] = "filename";
  config["caption_dropout_probability"] = 1.5;
  CHECK(contains(error_of([&] { Trainer t(config); }), "caption_dropout_probability must be within [0, 1]"));
}

TEST_CASE("U-REPA on the text-conditioned UNet's mid block; samples drawn with the empty caption") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  data::generate_demo_dataset(dir.file("data"), {1, 16, 4});
  write_tiny_clip_pipeline(dir.file("pipe"));
  auto config = text_config(dir, "urepa", 2);
  config["validation_step_interval"] = 2;
  config["urepa_enabled"] = true;
  config["urepa_model"] = "dinov2_vits14";
  config["urepa_encoder_image_size"] = 28;
  config["studio"]["encoder_random_init"] = true;
  Trainer trainer(config);
  CHECK(trainer.backbone().tap_width() == 64);
  REQUIRE(trainer.run() == 0);
  std::ifstream in(dir.file("runs/urepa/metrics.jsonl"));
  std::string line;
  std::getline(in, line);
  const auto metrics = nlohmann::json::parse(line);
  for (const char* key : {"urepa_loss", "urepa_alignment_loss", "urepa_manifold_loss"}) {
    REQUIRE_MESSAGE(metrics.contains(key), key);
    CHECK(std::isfinite(metrics[key].get<double>()));
  }
  CHECK(fs::exists(dir.file("runs/urepa/samples/step-000002.png")));
}
