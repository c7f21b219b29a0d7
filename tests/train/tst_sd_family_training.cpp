// SD 1.x, SD 2.x and SDXL trained from diffusers pipeline folders (tiny random ones in the real layout): the
// family decides the text conditioning, the VAE and its scaling, the objective and the schedule; SDXL's UNet gets
// the pooled embedding and per-image time_ids; the loss falls, resume is exact, samples are drawn from prompts;
// a folder of the wrong family, a missing component and a family without its encoder are named; a full run ends with
// its pipeline folder and LDM single file.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/config/native_training.h"
#include "core/data/center_crop.h"
#include "core/data/demo_dataset.h"
#include "core/data/image.h"
#include "core/io/safetensors.h"
#include "core/models/ldm_single_file.h"
#include "core/models/unet_2d_condition.h"
#include "core/train/ema.h"
#include "core/train/family_conditioning.h"
#include "core/config/family_pipeline.h"
#include "core/train/tiny_pipeline.h"
#include "core/train/sample_grid.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"
#include "tests/run_files.h"

using namespace repa;
using namespace repa::train;
using repa::config::pipeline_folder_problem;
namespace fs = std::filesystem;
using repa::test::events_of;
using repa::test::losses_of;
using repa::test::mean;
using repa::test::contains;
using repa::test::error_of;

namespace {

nlohmann::json family_config(const test::ScratchDir& dir, const std::string& family, const std::string& name,
                             int64_t steps) {
  return {{"model_family", family},
          {"pretrained_model_name_or_path", dir.file(family)},
          {"output_dir", dir.file("runs")},
          {"resolution", 32},
          {"max_train_steps", steps},
          {"train_batch_size", 4},
          {"learning_rate", 1e-3},
          {"lr_scheduler", "constant"},
          {"seed", 5},
          {"max_grad_norm", 1.0},
          {"validation_step_interval", 0},
          {"validation_num_inference_steps", 2},
          {"validation_prompt", "a large red disc in the upper left, on a dark background"},
          {"caption_strategy", "textfile"},
          {"urepa_enabled", true},
          {"urepa_model", "dinov2_vits14"},
          {"urepa_encoder_image_size", 28},
          {"studio",
           {{"dataset_dir", dir.file("data")},
            {"class_labels", false},
            {"run_name", name},
            {"encoder_random_init", true},
            {"device", "cpu"},
            {"num_workers", 0}}}};
}

struct Setup {
  test::ScratchDir dir;
  explicit Setup(const std::string& family) {
    data::generate_demo_dataset(dir.file("data"), {2, 48, 3});  // 12 captioned images, not square-cropped yet
    write_tiny_sd_pipeline(dir.file(family), family, test::fixture_path("tokenizers/clip"), 21);
  }
};

// A 24-step run validated once at its end: the loss falls, and the sample grid is written with the validation
// prompt. Returns the grid's path.
std::string check_loss_falls_and_sample_written(const std::string& run) {
  const auto losses = losses_of(run);
  REQUIRE(losses.size() == 24);
  INFO("first " << mean(losses, 0, 4) << " last " << mean(losses, 20, 24));
  CHECK(mean(losses, 20, 24) < mean(losses, 0, 4));
  const auto samples = events_of(run, "sample");
  REQUIRE(samples.size() == 1);
  CHECK(samples[0]["classes"][0] == "a large red disc in the upper left, on a dark background");
  const auto path = samples[0]["path"].get<std::string>();
  CHECK(fs::exists(path));
  return path;
}
}  // namespace

TEST_CASE("the SD families train natively; the other families name what they lack") {
  for (const char* family : {"sd1x", "sd2x", "sdxl"})
    CHECK(config::native_training_blocker({{"model_family", family}}).empty());
  CHECK(contains(config::native_training_blocker({{"model_family", "kolors"}}), "ChatGLM3"));
  CHECK(contains(config::native_training_blocker({{"model_family", "flux2"}}), "Mistral"));
  // Before Start: no folder, an unfetched Hub repo, a folder without the family's components.
  CHECK(contains(pipeline_folder_problem({{"model_family", "sdxl"}}),
                 "repa-train fetch stabilityai/stable-diffusion-xl-base-1.0 --family sdxl"));
  test::ScratchDir dir;
  fs::create_directories(dir.file("half/unet"));
  fs::create_directories(dir.file("half/vae"));
  CHECK(contains(pipeline_folder_problem({{"model_family", "sdxl"}, {"pretrained_model_name_or_path", dir.file("half")}}),
                 "lacks text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/ for model_family 'sdxl'"));
}

TEST_CASE("sd1x: CLIP-L last state, epsilon on scaled-linear betas, U-REPA on the mid block; loss falls") {
  torch::set_num_threads(1);
  Setup s("sd1x");
  auto config = family_config(s.dir, "sd1x", "sd1x", 24);
  config["validation_step_interval"] = 24;
  Trainer trainer(config);
  CHECK(contains(trainer.backbone().describe(), "sd1x UNet2DConditionModel"));
  CHECK(contains(trainer.backbone().describe(), "U-REPA on the mid block"));
  CHECK(trainer.backbone().tap_width() == 32);
  CHECK(trainer.captions()->width() == 32);
  REQUIRE(trainer.run() == 0);
  const auto run = trainer.run_directory().path();
  const auto written = nlohmann::json::parse(std::ifstream(run + "/config.json"));
  CHECK(written["studio"]["objective"] == "vp_epsilon");
  CHECK(written["studio"]["text_conditioning"] == "sd1x");
  CHECK(written["studio"]["vae_path"] == s.dir.file("sd1x") + "/vae");
  const auto sample = check_loss_falls_and_sample_written(run);
  // `repa-train sample` on the checkpoint draws the same prompts from the states the checkpoint keeps.
  const auto again = sample_checkpoint(run + "/checkpoints/checkpoint-24", s.dir.file("again.png"), {});
  const auto drawn = data::read_image(again), during = data::read_image(sample);
  CHECK(drawn.width == during.width);
  CHECK(drawn.pixels == during.pixels);
}

TEST_CASE("sdxl: pooled text and per-image time_ids reach the UNet; resume reproduces the losses") {
  torch::set_num_threads(1);
  Setup s("sdxl");
  // time_ids: the size the centre crop is cut from, its corner, the target. A 96x48 image at 32 px: halved once
  // to 48x24, resized to 64x32, cut at top 16.
  const auto g = data::adm_center_crop_geometry(48, 96, 32);
  CHECK(g.resized_width == 32);
  CHECK(g.resized_height == 64);
  CHECK(g.top == 16);
  CHECK(g.left == 0);

  auto config = family_config(s.dir, "sdxl", "xl", 6);
  config["checkpoint_step_interval"] = 3;
  config["caption_dropout_probability"] = 0.3;
  {
    Trainer trainer(config);
    CHECK(contains(trainer.backbone().describe(), "pooled text + time_ids"));
    CHECK(trainer.captions()->width() == 48);  // 16 + 32, the two encoders side by side
    REQUIRE(trainer.run() == 0);
  }
  const auto full = losses_of(s.dir.file("runs/xl"));
  REQUIRE(full.size() == 6);
  auto again = family_config(s.dir, "sdxl", "xl-resumed", 6);
  again["checkpoint_step_interval"] = 3;
  again["caption_dropout_probability"] = 0.3;
  again["resume_from_checkpoint"] = s.dir.file("runs/xl/checkpoints/checkpoint-3");
  again["studio"]["run_name"] = "xl";
  fs::rename(s.dir.file("runs/xl/metrics.jsonl"), s.dir.file("full-metrics.jsonl"));
  {
    Trainer resumed(again);
    REQUIRE(resumed.run() == 0);
  }
  const auto tail = losses_of(s.dir.file("runs/xl"));
  REQUIRE(tail.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(tail[static_cast<std::size_t>(i)] == doctest::Approx(full[3 + i]).epsilon(1e-5));

  // The pooled embedding and time_ids change the prediction.
  Trainer probe(family_config(s.dir, "sdxl", "probe", 1));
  torch::NoGradGuard no_grad;
  probe.backbone().module().eval();
  auto c = to_conditioning(probe.captions()->embeddings({"a large red disc in the upper left, on a dark background"}));
  c.time_ids = default_time_ids(32, 1);
  const auto x = torch::randn({1, 4, 16, 16});
  const auto t = torch::full({1}, 500.0);
  const auto a = probe.backbone().forward_conditioned(x, t, c, false).prediction;
  auto moved = c;
  moved.time_ids = torch::tensor({{64.0f, 32.0f, 16.0f, 0.0f, 32.0f, 32.0f}});
  const auto b = probe.backbone().forward_conditioned(x, t, moved, false).prediction;
  CHECK((a - b).abs().max().item<double>() > 1e-6);
}

TEST_CASE("the family's settings win over the from-scratch defaults a resolved config carries") {
  torch::set_num_threads(1);
  Setup s("sdxl");
  auto config = family_config(s.dir, "sdxl", "resolved", 1);
  // What the option registry fills in for runs without a family.
  config["studio"]["text_conditioning"] = "sd1x";
  config["studio"]["objective"] = "linear";
  config["studio"]["sampler"] = "euler";
  config["studio"]["vae_path"] = "";
  config["studio"]["latent_scaling_factor"] = 0.5;
  Trainer trainer(config);
  REQUIRE(trainer.run() == 0);
  const auto written = nlohmann::json::parse(std::ifstream(s.dir.file("runs/resolved/config.json")));
  CHECK(written["studio"]["text_conditioning"] == "sdxl");
  CHECK(written["studio"]["objective"] == "vp_epsilon");
  CHECK(written["studio"]["sampler"] == "ddim");
  CHECK(written["studio"]["latent_scaling_factor"] == 0.18215);
}

TEST_CASE("sd2x: v-prediction on zero-terminal-SNR betas, as SimpleTuner forces for SD 2.x") {
  torch::set_num_threads(1);
  Setup s("sd2x");
  Trainer trainer(family_config(s.dir, "sd2x", "v", 2));
  REQUIRE(trainer.run() == 0);
  const auto written = nlohmann::json::parse(std::ifstream(s.dir.file("runs/v/config.json")));
  CHECK(written["studio"]["objective"] == "vp_v");
  const auto schedule = diffusion::VpSchedule::from_scheduler_config({}, true);
  CHECK(schedule.alphas_cumprod[-1].item<double>() == doctest::Approx(0.0).epsilon(1e-12));
  const auto plain = diffusion::VpSchedule::scaled_linear();
  CHECK(schedule.alphas_cumprod[0].item<double>() == doctest::Approx(plain.alphas_cumprod[0].item<double>()));
  // prediction_type overrides the family's objective.
  auto eps = family_config(s.dir, "sd2x", "eps", 1);
  eps["prediction_type"] = "epsilon";
  Trainer override(eps);
  const auto w = nlohmann::json::parse(std::ifstream(s.dir.file("runs/eps/config.json")));
  CHECK(w["studio"]["objective"] == "vp_epsilon");
}

TEST_CASE("a pipeline of the wrong family or with a foreign VAE is named before training") {
  Setup s("sdxl");
  auto config = family_config(s.dir, "sd1x", "wrong", 1);
  config["pretrained_model_name_or_path"] = s.dir.file("sdxl");
  CHECK(contains(error_of([&] { Trainer t(config); }), "is sdxl-shaped"));
  CHECK(contains(error_of([&] { Trainer t(config); }), "model_family is sd1x"));
  // A VAE with 16 latent channels under an SDXL UNet.
  write_tiny_vae(s.dir.file("vae16"), 16, 3);
  auto foreign = family_config(s.dir, "sdxl", "vae", 1);
  foreign["pretrained_vae_model_name_or_path"] = s.dir.file("vae16");
  CHECK(contains(error_of([&] { Trainer t(foreign); }), "takes 4-channel latents, the VAE gives 16 channels"));
  // Missing tokenizer files are named.
  fs::remove(s.dir.file("sdxl/tokenizer_2/merges.txt"));
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "sdxl", "tok", 1)); }), "merges.txt"));
}

TEST_CASE("a run on a warm cache repeats the run that filled it") {
  torch::set_num_threads(1);
  Setup s("sd1x");
  {
    Trainer cold(family_config(s.dir, "sd1x", "cold", 3));
    REQUIRE(cold.captions()->fill_report().computed > 0);
    REQUIRE(cold.run() == 0);
  }
  {
    Trainer warm(family_config(s.dir, "sd1x", "warm", 3));
    REQUIRE(warm.captions()->fill_report().computed == 0);
    REQUIRE(warm.run() == 0);
  }
  const auto a = losses_of(s.dir.file("runs/cold")), b = losses_of(s.dir.file("runs/warm"));
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(a[i] == b[i]);
}

TEST_CASE("a misfit regularizer stops before the teacher loads or any cache fills") {
  Setup s("sd1x");
  auto misfit = family_config(s.dir, "sd1x", "misfit", 1);
  misfit["urepa_enabled"] = false;
  misfit["crepa_enabled"] = true;
  CHECK(contains(error_of([&] { Trainer t(misfit); }), "crepa_enabled is set for a UNet (model_family 'sd1x')"));
  CHECK_FALSE(fs::exists(s.dir.file("data/.repa-cache")));
}

TEST_CASE("LoRA on the SD families: SD 2.x takes SD 1.x's targets") {
  torch::set_num_threads(1);
  Setup s("sd2x");
  auto config = family_config(s.dir, "sd2x", "lora", 2);
  config["model_type"] = "lora";
  config["lora_rank"] = 4;
  Trainer trainer(config);
  REQUIRE(trainer.run() == 0);
  CHECK(fs::exists(s.dir.file("runs/lora/pytorch_lora_weights.safetensors")));
  CHECK_FALSE(fs::exists(s.dir.file("runs/lora/pipeline")));  // the adapter is the output; the base stays as it is
  const auto states = events_of(s.dir.file("runs/lora"), "state");
  REQUIRE_FALSE(states.empty());
  const auto& finished = states.back();
  CHECK(finished["lora_file"] == s.dir.file("runs/lora/pytorch_lora_weights.safetensors"));
  CHECK_FALSE(finished.contains("pipeline_folder"));
  CHECK(fs::exists(sample_checkpoint(s.dir.file("runs/lora/checkpoints/checkpoint-2"), s.dir.file("lora.png"), {})));
}

TEST_CASE("a full sd1x run ends with a pipeline folder holding the EMA UNet and an LDM single file, both read back") {
  torch::set_num_threads(1);
  Setup s("sd1x");
  auto config = family_config(s.dir, "sd1x", "full", 2);
  config["use_ema"] = true;
  config["ema_decay"] = 0.5;
  Trainer trainer(config);
  REQUIRE(trainer.run() == 0);
  const auto run = s.dir.file("runs/full");
  const auto ema = io::SafetensorsFile::open(run + "/checkpoints/checkpoint-2/ema.safetensors");
  const auto last = io::SafetensorsFile::open(run + "/checkpoints/checkpoint-2/model.safetensors");
  const auto base = io::SafetensorsFile::open(s.dir.file("sd1x/unet/diffusion_pytorch_model.safetensors"));

  // pipeline/unet/ loads through the loader a pipeline's unet/ goes through, and holds the average.
  auto unet = models::load_unet_2d_condition(run + "/pipeline/unet");
  std::size_t tensors = 0, unlike_last = 0, unlike_base = 0;
  for (const auto& [name, tensor] : module_state(*unet)) {
    CAPTURE(name);
    REQUIRE(ema.contains(name));
    CHECK(torch::equal(tensor, ema.tensor(name)));
    ++tensors;
    if (!torch::equal(tensor, last.tensor(name))) ++unlike_last;
    if (!torch::equal(tensor, base.tensor(name))) ++unlike_base;
  }
  CHECK(tensors == ema.names().size());
  CHECK(unlike_last > 0);  // EMA weights, not the last step's
  CHECK(unlike_base > 0);  // trained
  // The rest of the pipeline is the base's, so the folder is a complete pipeline to load or train from.
  for (const char* file : {"model_index.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
                           "tokenizer/vocab.json", "scheduler/scheduler_config.json", "unet/config.json"})
    CHECK(test::read_bytes(run + "/pipeline/" + file) == test::read_bytes(s.dir.file(std::string("sd1x/") + file)));
  CHECK(pipeline_folder_problem({{"model_family", "sd1x"}, {"pretrained_model_name_or_path", run + "/pipeline"}})
            .empty());
  CHECK_FALSE(fs::exists(run + "/pipeline.partial"));

  // The single file: the same UNet under the LDM names, with the pipeline's VAE and text encoder.
  const auto parts = models::read_ldm_single_file(run + "/full.safetensors", "sd1x");
  REQUIRE(parts.weights.count("unet"));
  CHECK(parts.weights.at("unet").size() == tensors);
  for (const auto& [name, tensor] : parts.weights.at("unet")) {
    CAPTURE(name);
    CHECK(torch::equal(tensor, ema.tensor(name)));
  }
  const auto vae = io::SafetensorsFile::open(s.dir.file("sd1x/vae/diffusion_pytorch_model.safetensors"));
  REQUIRE(parts.weights.count("vae"));
  for (const auto& [name, tensor] : parts.weights.at("vae")) CHECK(torch::equal(tensor, vae.tensor(name)));
  CHECK(parts.weights.count("text_encoder") == 1);

  // status.json, the finished state event and the log name both.
  const auto status = nlohmann::json::parse(std::ifstream(run + "/status.json"));
  CHECK(status["pipeline_folder"] == run + "/pipeline");
  CHECK(status["single_file"] == run + "/full.safetensors");
  const auto states = events_of(run, "state");
  REQUIRE_FALSE(states.empty());
  CHECK(states.back()["state"] == "finished");
  CHECK(states.back()["pipeline_folder"] == run + "/pipeline");
  CHECK(states.back()["single_file"] == run + "/full.safetensors");
  std::string notes;
  for (const auto& e : events_of(run, "log")) notes += e.value("message", "") + "\n";
  CHECK(contains(notes, "fine-tuned pipeline written to " + run + "/pipeline (unet/ with the EMA weights"));
  CHECK(contains(notes, "LDM single file (A1111, ComfyUI) written to " + run + "/full.safetensors"));
}

TEST_CASE("sd2x and sdxl: the loss falls over 24 steps and the validation samples are written with their prompts") {
  torch::set_num_threads(1);
  for (const std::string family : {"sd2x", "sdxl"}) {
    INFO(family);
    Setup s(family);
    auto config = family_config(s.dir, family, family, 24);
    config["validation_step_interval"] = 24;
    Trainer trainer(config);
    REQUIRE(trainer.run() == 0);
    check_loss_falls_and_sample_written(trainer.run_directory().path());
  }
}
