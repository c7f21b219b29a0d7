// The training loop end to end on tiny models: a run produces metrics, samples and checkpoints; a resumed run
// repeats the uninterrupted run's losses; corrupt files are skipped by name; a NaN stops the run and keeps the
// last checkpoint; U-REPA on a UNet and text-conditioned families.
#include <doctest/doctest.h>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/base/error.h"
#include "core/data/demo_dataset.h"
#include "core/data/image.h"
#include "core/models/autoencoder_kl.h"
#include "core/train/checkpoint.h"
#include "core/train/sample_grid.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"
#include "tests/run_files.h"

using namespace repa::train;
namespace fs = std::filesystem;
using repa::test::events_of;

namespace {

nlohmann::json tiny_config(const repa::test::ScratchDir& dir, const std::string& name) {
  return {{"output_dir", dir.file("runs")},
          {"resolution", 16},
          {"max_train_steps", 6},
          {"train_batch_size", 4},
          {"learning_rate", 1e-3},
          {"lr_scheduler", "constant"},
          {"seed", 3},
          {"use_ema", true},
          {"ema_decay", 0.9},
          {"max_grad_norm", 1.0},
          {"checkpoint_step_interval", 3},
          {"checkpoints_total_limit", 5},
          {"validation_step_interval", 3},
          {"validation_num_inference_steps", 2},
          {"validation_guidance", 2.0},
          {"resume_from_checkpoint", nullptr},
          {"crepa_enabled", true},
          {"crepa_block_index", 0},
          {"crepa_lambda", 0.5},
          {"crepa_encoder", "dinov2_vits14"},
          {"crepa_encoder_image_size", 28},
          {"studio",
           {{"dataset_dir", dir.file("data")},
            {"run_name", name},
            {"architecture", "sit"},
            {"sit_size", "custom"},
            {"patch_size", 4},
            {"depth", 2},
            {"hidden_size", 32},
            {"num_heads", 2},
            {"encoder_random_init", true},
            {"device", "cpu"},
            {"num_workers", 1}}}};
}

std::map<int64_t, double> losses_of(const std::string& run_dir) {
  std::map<int64_t, double> out;  // the last line for each step counts (resumed runs repeat steps)
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto m = nlohmann::json::parse(line);
    out[m["step"].get<int64_t>()] = m["loss"].get<double>();
  }
  return out;
}

}  // namespace

TEST_CASE("a REPA run writes metrics with the alignment scalars, samples and checkpoints, and resumes exactly") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {4, 16, 1});
  auto config = tiny_config(dir, "whole");
  {
    Trainer trainer(config);
    CHECK(trainer.run() == 0);
  }
  const auto whole = dir.file("runs/whole");
  const auto losses = losses_of(whole);
  REQUIRE(losses.size() == 6);
  std::ifstream first_line(whole + "/metrics.jsonl");
  std::string line;
  std::getline(first_line, line);
  const auto m = nlohmann::json::parse(line);
  for (const char* key : {"loss", "diffusion_loss", "crepa_loss", "crepa_alignment_score", "crepa_weight", "lr",
                          "grad_norm", "images_per_sec", "step_time_ms", "memory_bytes"})
    CHECK_MESSAGE(m.contains(key), key);
  CHECK(m["crepa_weight"].get<double>() == doctest::Approx(0.5));
  CHECK(fs::exists(whole + "/samples/step-000003.png"));
  CHECK(fs::exists(whole + "/samples/step-000006.png"));
  CHECK(fs::exists(whole + "/checkpoints/checkpoint-6/model.safetensors"));
  CHECK(fs::exists(whole + "/checkpoints/checkpoint-3/ema.safetensors"));
  CHECK(fs::exists(whole + "/checkpoints/checkpoint-3/align.safetensors"));
  const auto started = events_of(whole, "run_started");
  REQUIRE(started.size() == 1);
  CHECK(started[0]["schema"] == 1);
  CHECK(started[0]["teacher"].get<std::string>().find("randomly initialised") != std::string::npos);
  CHECK(nlohmann::json::parse(repa::test::read_bytes(whole + "/status.json"))["state"] == "finished");

  // A saved checkpoint draws the same grid twice (fixed seeds), from its EMA weights.
  const auto a = sample_checkpoint(whole + "/checkpoints/checkpoint-6", dir.file("a.png"), nlohmann::json::object());
  const auto b = sample_checkpoint(whole + "/checkpoints/checkpoint-6", dir.file("b.png"), nlohmann::json::object());
  CHECK(repa::test::read_bytes(a) == repa::test::read_bytes(b));
  CHECK(repa::test::read_bytes(a) == repa::test::read_bytes(whole + "/samples/step-000006.png"));
  // validation_seed fixes the starting noise by itself: the run's seed no longer moves it.
  const auto seeded = [&](int seed, int validation_seed, const char* name) {
    return repa::test::read_bytes(sample_checkpoint(whole + "/checkpoints/checkpoint-6", dir.file(name),
                                                    {{"seed", seed}, {"validation_seed", validation_seed}}));
  };
  CHECK(seeded(1, 42, "s1.png") == seeded(2, 42, "s2.png"));
  CHECK(seeded(1, 42, "s3.png") != seeded(1, 43, "s4.png"));
  CHECK(seeded(1, 42, "s5.png") != repa::test::read_bytes(a));

  // The second run stops after checkpoint 3 (max_train_steps 3), then resumes to 6 from it.
  config["studio"]["run_name"] = "parts";
  config["max_train_steps"] = 3;
  { Trainer(config).run(); }
  config["max_train_steps"] = 6;
  config["resume_from_checkpoint"] = "latest";
  {
    Trainer trainer(config);
    CHECK(trainer.step() == 3);
    CHECK(trainer.run() == 0);
  }
  const auto resumed = losses_of(dir.file("runs/parts"));
  REQUIRE(resumed.size() == 6);
  for (int64_t step = 1; step <= 6; ++step) CHECK(resumed.at(step) == losses.at(step));
}

TEST_CASE("corrupt images are skipped and named in run_started and the log; the run trains on the rest") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  repa::test::write_bytes(dir.file("data/disc/broken.png"), "\x89PNG\r\n\x1a\n-not-really");
  repa::test::write_bytes(dir.file("data/ring/empty.jpg"), "");
  auto config = tiny_config(dir, "corrupt");
  config["max_train_steps"] = 2;
  config["validation_step_interval"] = 0;
  Trainer trainer(config);
  CHECK(trainer.run() == 0);
  const auto started = events_of(dir.file("runs/corrupt"), "run_started");
  REQUIRE(started.size() == 1);
  const auto corrupt = started[0]["dataset"]["corrupt"];
  REQUIRE(corrupt.size() == 2);
  CHECK(corrupt.dump().find("broken.png") != std::string::npos);
  CHECK(corrupt.dump().find("empty.jpg") != std::string::npos);
  CHECK(started[0]["dataset"]["images"] == 12);
  CHECK(repa::test::read_bytes(dir.file("runs/corrupt/train.log")).find("broken.png") != std::string::npos);
}

TEST_CASE("a diverging run stops with a clear error and leaves the last good checkpoint intact") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  auto config = tiny_config(dir, "nan");
  config["max_train_steps"] = 40;
  config["checkpoint_step_interval"] = 1;
  config["checkpoints_total_limit"] = 2;
  config["validation_step_interval"] = 0;
  config["max_grad_norm"] = 0;
  config["learning_rate"] = 1e30;
  Trainer trainer(config);
  CHECK(trainer.run() == 1);
  const auto errors = events_of(dir.file("runs/nan"), "error");
  REQUIRE(errors.size() == 1);
  const std::string message = errors[0]["message"];
  CHECK((message.find("NaN") != std::string::npos || message.find("infinite") != std::string::npos ||
         message.find("non-finite") != std::string::npos));
  const auto kept = errors[0]["last_checkpoint"].get<std::string>();
  REQUIRE_FALSE(kept.empty());
  // The kept checkpoint loads and holds finite weights.
  const auto model = open_checkpoint_part(kept, "model");
  for (const auto& name : model.names()) CHECK_MESSAGE(torch::isfinite(model.tensor(name)).all().item<bool>(), name);
  CHECK(nlohmann::json::parse(repa::test::read_bytes(dir.file("runs/nan/status.json")))["state"] == "failed");
}

TEST_CASE("U-REPA trains a class-conditional UNet in pixel space and reports its scalars") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  auto config = tiny_config(dir, "unet");
  config.erase("crepa_enabled");
  config["max_train_steps"] = 2;
  config["validation_step_interval"] = 2;
  config["urepa_enabled"] = true;
  config["urepa_model"] = "dinov2_vits14";
  config["urepa_encoder_image_size"] = 28;
  config["studio"]["architecture"] = "unet2d";
  Trainer trainer(config);
  CHECK(trainer.run() == 0);
  std::ifstream in(dir.file("runs/unet/metrics.jsonl"));
  std::string line;
  std::getline(in, line);
  const auto m = nlohmann::json::parse(line);
  for (const char* key : {"urepa_loss", "urepa_alignment_loss", "urepa_manifold_loss", "urepa_weight"})
    CHECK_MESSAGE(m.contains(key), key);
  CHECK(fs::exists(dir.file("runs/unet/samples/step-000002.png")));
}

TEST_CASE("latent space: a VAE's posteriors are cached for both orientations and samples are decoded") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  // A tiny diffusers-layout VAE folder with random weights (downsampling 2, 4 latent channels).
  const nlohmann::json vae_config = {{"in_channels", 3},
                                     {"out_channels", 3},
                                     {"latent_channels", 4},
                                     {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D"}},
                                     {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D"}},
                                     {"block_out_channels", {8, 16}},
                                     {"layers_per_block", 1},
                                     {"norm_num_groups", 4}};
  fs::create_directories(dir.file("vae"));
  repa::test::write_bytes(dir.file("vae/config.json"), vae_config.dump());
  {
    torch::manual_seed(5);
    repa::models::AutoencoderKL vae(repa::models::AutoencoderKLConfig::from_json(vae_config));
    repa::io::save_safetensors(dir.file("vae/diffusion_pytorch_model.safetensors"), module_state(*vae));
  }
  auto config = tiny_config(dir, "latent");
  config["max_train_steps"] = 2;
  config["validation_step_interval"] = 2;
  config["gradient_accumulation_steps"] = 2;
  config["studio"]["vae_path"] = dir.file("vae");
  config["studio"]["random_flip"] = true;
  config["studio"]["patch_size"] = 2;
  Trainer trainer(config);
  CHECK(trainer.run() == 0);
  int entries = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir.file("data/.repa-cache"))) {
    if (entry.path().extension() != ".safetensors" ||
        entry.path().parent_path().parent_path().filename().string().rfind("latents-", 0) != 0)
      continue;
    const auto file = repa::io::SafetensorsFile::open(entry.path().string());
    CHECK(file.contains("mean"));
    CHECK(file.contains("std_flip"));
    CHECK((file.tensor("mean").sizes() == torch::IntArrayRef({4, 8, 8})));
    ++entries;
  }
  CHECK(entries == 12);
  const auto started = events_of(dir.file("runs/latent"), "run_started");
  CHECK(started[0]["space"].get<std::string>().find("latent space") != std::string::npos);
  // The grid holds decoded 16 px images: 8 columns of 16 + padding.
  const auto grid = repa::data::read_image(dir.file("runs/latent/samples/step-000002.png"));
  CHECK(grid.width == 8 * (16 + 2) + 2);
}

TEST_CASE("text-conditioned families and mismatched regularizers stop at once with the way forward") {
  repa::test::ScratchDir dir;
  // HiDream's transformer is built, its Llama-3.1 text encoder is not.
  auto config = tiny_config(dir, "hidream");
  config["model_family"] = "hidream";
  CHECK_THROWS_WITH_AS(Trainer{config}, doctest::Contains("--format simpletuner"), repa::InputError);
  CHECK_FALSE(fs::exists(dir.file("runs/hidream")));
  // A family trained here stops before the run folder when its pipeline folder is missing.
  auto flux = tiny_config(dir, "flux");
  flux["model_family"] = "flux";
  CHECK_THROWS_WITH_AS(Trainer{flux}, doctest::Contains("repa-train fetch black-forest-labs/FLUX.1-dev"),
                       repa::InputError);
  CHECK_FALSE(fs::exists(dir.file("runs/flux")));
}
