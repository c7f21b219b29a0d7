// SD3, Flux (dev / schnell) and Chroma trained natively from diffusers pipeline folders (tiny random ones in the
// real layout) with REPA on the tapped block: the family's text conditioning, 16-channel VAE with its shift, flow
// sigmas and timestep convention; the loss falls, the alignment score is reported, resume reproduces the losses,
// samples are drawn from prompts, a full run leaves its pipeline folder; past-the-end block indices, wrong-family
// folders and refused options are named.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/adapters/lora_file.h"
#include "core/base/error.h"
#include "core/config/native_training.h"
#include "core/data/demo_dataset.h"
#include "core/diffusion/samplers.h"
#include "core/io/safetensors.h"
#include "core/models/flux_transformer.h"
#include "core/train/backbone_flow_families.h"
#include "core/train/family_conditioning.h"
#include "core/train/tiny_pipeline.h"
#include "core/train/tiny_pipeline_flow.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"
#include "tests/run_files.h"

using namespace repa;
using namespace repa::train;
namespace fs = std::filesystem;
using repa::test::events_of;
using repa::test::metrics_of;
using repa::test::contains;
using repa::test::error_of;

namespace {

TinyTokenizers tokenizers() {
  return {test::fixture_path("tokenizers/clip"), test::fixture_path("tokenizers/t5/spiece.model")};
}

nlohmann::json family_config(const test::ScratchDir& dir, const std::string& family, const std::string& folder,
                             const std::string& name, int64_t steps, int64_t block) {
  return {{"model_family", family},
          {"pretrained_model_name_or_path", dir.file(folder)},
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
          {"crepa_enabled", true},
          {"crepa_block_index", block},
          {"crepa_lambda", 0.5},
          {"crepa_encoder", "dinov2_vits14"},
          {"crepa_encoder_image_size", 28},
          {"studio",
           {{"dataset_dir", dir.file("data")},
            {"class_labels", false},
            {"run_name", name},
            {"encoder_random_init", true},
            {"device", "cpu"},
            {"num_workers", 0}}}};
}

double mean_of(const std::vector<nlohmann::json>& m, const char* key, std::size_t begin, std::size_t end) {
  double sum = 0.0;
  for (std::size_t i = begin; i < end; ++i) sum += m[i].at(key).get<double>();
  return sum / static_cast<double>(end - begin);
}

nlohmann::json written_config(const std::string& run_dir) {
  return nlohmann::json::parse(std::ifstream(run_dir + "/config.json"));
}

struct Setup {
  test::ScratchDir dir;
  Setup() { data::generate_demo_dataset(dir.file("data"), {2, 48, 3}); }  // 12 captioned images
};

// A 12-step run with a sample at the end: the loss falls, the alignment score is reported, samples list the prompt.
void check_training_run(nlohmann::json config, int64_t steps) {
  config["validation_step_interval"] = steps;
  Trainer trainer(config);
  REQUIRE(trainer.run() == 0);
  const auto run = trainer.run_directory().path();
  const auto m = metrics_of(run);
  REQUIRE(m.size() == static_cast<std::size_t>(steps));
  const double first = mean_of(m, "loss", 0, 3), last = mean_of(m, "loss", m.size() - 3, m.size());
  MESSAGE(config["model_family"].get<std::string>()
          << ": loss first " << first << " last " << last << ", alignment score " << m.front()["crepa_alignment_score"]
          << " -> " << m.back()["crepa_alignment_score"]);
  CHECK(last < first);
  CHECK(m.back().contains("crepa_alignment_score"));
  CHECK(mean_of(m, "crepa_alignment_score", m.size() - 3, m.size()) > mean_of(m, "crepa_alignment_score", 0, 3));
  const auto samples = events_of(run, "sample");
  REQUIRE(samples.size() == 1);
  CHECK(samples[0]["classes"][0] == "a large red disc in the upper left, on a dark background");
  CHECK(fs::exists(samples[0]["path"].get<std::string>()));
}

// Six steps with checkpoints at 3, then a resume from checkpoint-3: the last three losses are reproduced.
void check_resume(const test::ScratchDir& dir, nlohmann::json config, const std::string& name) {
  config["max_train_steps"] = 6;
  config["checkpoint_step_interval"] = 3;
  {
    Trainer trainer(config);
    REQUIRE(trainer.run() == 0);
  }
  const auto full = metrics_of(dir.file("runs/" + name));
  REQUIRE(full.size() == 6);
  fs::rename(dir.file("runs/" + name + "/metrics.jsonl"), dir.file(name + "-full-metrics.jsonl"));
  config["resume_from_checkpoint"] = dir.file("runs/" + name + "/checkpoints/checkpoint-3");
  {
    Trainer resumed(config);
    REQUIRE(resumed.run() == 0);
  }
  const auto tail = metrics_of(dir.file("runs/" + name));
  REQUIRE(tail.size() == 3);
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(tail[i]["loss"].get<double>() == doctest::Approx(full[3 + i]["loss"].get<double>()).epsilon(1e-6));
}

}  // namespace

TEST_CASE("sd3, flux and chroma train natively; flux2 still names its missing encoder") {
  for (const char* family : {"sd3", "flux", "chroma"})
    CHECK(config::native_training_blocker({{"model_family", family}}).empty());
  CHECK(contains(config::native_training_blocker({{"model_family", "flux2"}}), "Mistral"));
  // Chroma's schedule squashes the sampler's sigmas toward the ends unless another schedule is asked for.
  const auto sigmas = torch::tensor({0.2f, 0.5f, 0.9f});
  const auto chroma = family_training_sigmas({{"model_family", "chroma"}}, sigmas);
  CHECK(chroma[0].item<double>() == doctest::Approx(0.04));
  CHECK(chroma[1].item<double>() == doctest::Approx(0.75));
  CHECK(chroma[2].item<double>() == doctest::Approx(0.99));
  CHECK(torch::equal(family_training_sigmas({{"model_family", "chroma"}, {"flow_use_uniform_schedule", true}}, sigmas),
                     sigmas));
  CHECK(torch::equal(family_training_sigmas({{"model_family", "flux"}}, sigmas), sigmas));
}

TEST_CASE("sd3: CLIP-L + CLIP-G + T5, 16-channel VAE with its shift, timestep 1000·σ, REPA on a joint block") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_sd3_pipeline(s.dir.file("sd3"), tokenizers(), 31);
  auto config = family_config(s.dir, "sd3", "sd3", "sd3", 12, 1);
  {
    Trainer trainer(config);
    CHECK(contains(trainer.backbone().describe(), "REPA on joint block 1"));
    CHECK(trainer.backbone().tap_width() == 16);
    CHECK(trainer.captions()->width() == 64);  // CLIP 16 + 32 padded to T5's 64
    const auto written = written_config(trainer.run_directory().path());
    CHECK(written["studio"]["objective"] == "linear");
    CHECK(written["studio"]["latent_shift_factor"].get<double>() == doctest::Approx(0.0609));
    CHECK(written["studio"]["latent_scaling_factor"].get<double>() == doctest::Approx(1.5305));
    CHECK(written["tokenizer_max_length"] == 154);  // SimpleTuner's SD3 T5 default
    // The conditioning: 77 CLIP tokens then 154 T5 tokens, pooled CLIP-L + CLIP-G.
    const auto c =
        to_conditioning(trainer.captions()->embeddings({"a large red disc in the upper left, on a dark background"}));
    CHECK(c.text.sizes() == torch::IntArrayRef({1, 77 + 154, 64}));
    CHECK(c.text.slice(1, 0, 77).slice(2, 48).abs().max().item<double>() == 0.0);
    CHECK(c.pooled.sizes() == torch::IntArrayRef({1, 48}));
  }
  {
    // SimpleTuner's SD3 ignores a custom VAE; so does the studio.
    write_tiny_vae(s.dir.file("vae4"), 4, 3);
    auto custom = family_config(s.dir, "sd3", "sd3", "sd3-vae", 1, 1);
    custom["pretrained_vae_model_name_or_path"] = s.dir.file("vae4");
    Trainer trainer(custom);
    CHECK(written_config(trainer.run_directory().path())["studio"]["vae_path"] == s.dir.file("sd3") + "/vae");
  }
  check_training_run(family_config(s.dir, "sd3", "sd3", "sd3-run", 12, 1), 12);
  check_resume(s.dir, family_config(s.dir, "sd3", "sd3", "sd3-resume", 6, 0), "sd3-resume");

  // Bad input: a block past the last, an unsupported unconditional behaviour, a Flux folder given as sd3.
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "sd3", "sd3", "bad", 1, 2)); }),
                 "crepa_block_index 2 is not a block of the SD3 transformer"));
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "sd3", "sd3", "bad", 1, 2)); }),
                 "it has 2 double-stream and 0 single-stream blocks"));
  auto zero = family_config(s.dir, "sd3", "sd3", "bad", 1, 0);
  zero["sd3_clip_uncond_behaviour"] = "zero";
  CHECK(contains(error_of([&] { Trainer t(zero); }), "sd3_clip_uncond_behaviour 'zero' is not supported"));
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 3);
  CHECK(
      contains(error_of([&] { Trainer t(family_config(s.dir, "sd3", "flux", "bad", 1, 0)); }),
               "holds a FluxPipeline (a flux model); model_family sd3 trains from a StableDiffusion3Pipeline folder"));
  // Without model_index.json the transformer's class names it.
  fs::remove(s.dir.file("flux/model_index.json"));
  fs::create_directories(s.dir.file("flux/text_encoder_3"));
  fs::create_directories(s.dir.file("flux/tokenizer_3"));
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "sd3", "flux", "bad", 1, 0)); }),
                 "is a FluxTransformer2DModel (a flux model); model_family sd3 needs a SD3Transformer2DModel"));
}

TEST_CASE("sd3.5: dual attention and RMS qk-norm train the same way") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_sd3_pipeline(s.dir.file("sd35"), tokenizers(), 33, true);
  auto config = family_config(s.dir, "sd3", "sd35", "sd35", 6, 0);
  Trainer trainer(config);
  CHECK(contains(trainer.backbone().describe(), "SD3.5 dual attention"));
  REQUIRE(trainer.run() == 0);
  const auto m = metrics_of(trainer.run_directory().path());
  REQUIRE(m.size() == 6);
  MESSAGE("sd3.5: loss first " << m.front()["loss"] << " last " << m.back()["loss"]);
  CHECK(mean_of(m, "loss", 3, 6) < mean_of(m, "loss", 0, 3));
}

TEST_CASE("flux dev: packed 2x2 tokens, guidance embedding, T5 512, REPA on a single block (text cut)") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 41);
  auto config = family_config(s.dir, "flux", "flux", "flux", 12, 2);
  config["flux_guidance_mode"] = "random-range";
  config["flux_guidance_min"] = 1.0;
  config["flux_guidance_max"] = 4.0;
  config["tokenizer_max_length"] = 77;  // ignored, as SimpleTuner ignores it for Flux
  {
    Trainer trainer(config);
    CHECK(contains(trainer.backbone().describe(), "1 double + 2 single blocks"));
    CHECK(contains(trainer.backbone().describe(), "guidance uniform in [1.0"));
    CHECK(trainer.backbone().tap_width() == 16);
    const auto written = written_config(trainer.run_directory().path());
    CHECK(written["tokenizer_max_length"] == 512);
    CHECK(written["studio"]["latent_shift_factor"].get<double>() == doctest::Approx(0.1159));
    // The tapped state is the image tokens only (8x8 from the 16x16 latent), the prediction unpacked like x.
    torch::NoGradGuard no_grad;
    auto& backbone = trainer.backbone();
    backbone.module().eval();
    auto c =
        to_conditioning(trainer.captions()->embeddings({"a large red disc in the upper left, on a dark background"}));
    CHECK(c.text.sizes() == torch::IntArrayRef({1, 512, 32}));
    const auto x = torch::randn({1, 16, 16, 16});
    const auto sigma = torch::full({1}, 0.6);
    const auto out = backbone.forward_conditioned(x, sigma, c, true);
    CHECK(out.prediction.sizes() == x.sizes());
    CHECK(out.tapped.sizes() == torch::IntArrayRef({1, 64, 16}));
    // Samples: without validation_guidance_real > 1 the sampler's negative rows repeat their prompts (SimpleTuner's
    // Flux validation has no true CFG), so the guided result is the prompt's prediction.
    const auto pair = torch::cat({x, x});
    const auto null = backbone.null_label();
    const auto sampled = backbone.forward(pair, torch::full({2}, 0.6), torch::tensor({int64_t{0}, null}), false);
    CHECK(torch::allclose(sampled.prediction[0], sampled.prediction[1], 1e-5, 1e-6));
    const auto negative = backbone.forward(x, torch::full({1}, 0.6), torch::tensor({null}), false).prediction;
    CHECK((negative[0] - sampled.prediction[1]).abs().max().item<double>() > 1e-5);  // the negative prompt differs
  }
  check_training_run(config, 12);
  {
    // The end of a full run: pipeline/transformer/ loads back as the trained transformer; no LDM file for Flux.
    const auto run = s.dir.file("runs/flux");
    const auto folder = run + "/pipeline/transformer";
    models::FluxTransformer loaded(models::FluxTransformerConfig::from_json(
        nlohmann::json::parse(std::ifstream(folder + "/config.json"))));
    loaded->load_weights(folder);
    const auto trained = io::SafetensorsFile::open(run + "/checkpoints/checkpoint-12/model.safetensors");
    std::size_t tensors = 0;
    for (const auto& item : loaded->named_parameters()) {
      CAPTURE(item.key());
      CHECK(torch::equal(item.value(), trained.tensor(item.key())));
      ++tensors;
    }
    CHECK(tensors > 0);
    CHECK(fs::exists(run + "/pipeline/text_encoder_2/config.json"));
    CHECK(fs::exists(run + "/pipeline/model_index.json"));
    CHECK_FALSE(fs::exists(run + "/flux.safetensors"));
  }
  auto resume = config;
  resume["studio"]["run_name"] = "flux-resume";
  resume["flux_attention_masked_training"] = true;
  check_resume(s.dir, resume, "flux-resume");
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "flux", "flux", "bad", 1, 3)); }),
                 "it has 1 double-stream and 2 single-stream blocks"));
  // A 4-channel VAE under a 16-channel transformer.
  write_tiny_vae(s.dir.file("vae4"), 4, 3);
  auto foreign = family_config(s.dir, "flux", "flux", "bad", 1, 0);
  foreign["pretrained_vae_model_name_or_path"] = s.dir.file("vae4");
  CHECK(contains(error_of([&] { Trainer t(foreign); }),
                 "takes 16-channel latents (64 channels packed 2x2), the VAE gives 4 channels"));
  auto mode = family_config(s.dir, "flux", "flux", "bad", 1, 0);
  mode["flux_guidance_mode"] = "cfg-distilled";
  CHECK(contains(error_of([&] { Trainer t(mode); }), "flux_guidance_mode 'cfg-distilled' is unknown"));
}

TEST_CASE("Flux packing: 2x2 patches into tokens with channels outermost, image ids (0, row, column)") {
  const auto x = torch::arange(2 * 3 * 4 * 6, torch::kFloat32).reshape({2, 3, 4, 6});
  const auto tokens = flux_pack_latents(x);
  REQUIRE(tokens.sizes() == torch::IntArrayRef({2, 6, 12}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t dy = 0; dy < 2; ++dy)
          for (int64_t dx = 0; dx < 2; ++dx)
            CHECK(tokens[1][i * 3 + j][c * 4 + dy * 2 + dx].item<float>() ==
                  x[1][c][2 * i + dy][2 * j + dx].item<float>());
  CHECK(torch::equal(flux_unpack_latents(tokens, 3, 4, 6), x));
  const auto ids = flux_image_ids(4, 6, torch::kCPU);
  REQUIRE(ids.sizes() == torch::IntArrayRef({6, 3}));
  CHECK(torch::equal(ids[4], torch::tensor({0.0f, 1.0f, 1.0f})));
  CHECK(torch::equal(ids[2], torch::tensor({0.0f, 0.0f, 2.0f})));
  CHECK(contains(error_of([&] { flux_pack_latents(torch::zeros({1, 4, 5, 6})); }), "is not even"));
}

TEST_CASE(
    "validation sigmas: the pipeline scheduler's, SD3 static shift, Flux/Chroma dynamic shift of the token count") {
  Setup s;
  write_tiny_sd3_pipeline(s.dir.file("sd3"), tokenizers(), 3);
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 3);
  const auto sd3 = family_sampling_sigmas(family_config(s.dir, "sd3", "sd3", "x", 1, 0), 16, 16, 2);
  REQUIRE(sd3.numel() == 3);
  // linspace(σ_max, σ_min) of the shift-3 training sigmas, shifted again (diffusers), then 0.
  const double once = 3 * 0.001 / (1 + 2 * 0.001), twice = 3 * once / (1 + 2 * once);
  CHECK(sd3[0].item<double>() == doctest::Approx(1.0));
  CHECK(sd3[1].item<double>() == doctest::Approx(twice).epsilon(1e-5));
  CHECK(sd3[2].item<double>() == 0.0);
  // Flux: linspace(1, 1/n, n) through exp(μ)/(exp(μ) + 1/σ − 1), μ of 64 packed tokens between (256, 0.5) and
  // (4096, 1.15).
  const auto flux = family_sampling_sigmas(family_config(s.dir, "flux", "flux", "x", 1, 0), 16, 16, 2);
  REQUIRE(flux.numel() == 3);
  const double mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * (64 - 256);
  CHECK(flux[1].item<double>() == doctest::Approx(std::exp(mu) / (std::exp(mu) + 1.0)).epsilon(1e-5));
  auto ddim = family_config(s.dir, "flux", "flux", "x", 1, 0);
  ddim["studio"]["sampler"] = "euler_maruyama";
  CHECK_FALSE(family_sampling_sigmas(ddim, 16, 16, 2).defined());
  // The Euler sampler steps through that grid: dx/dt = x gives x·Π(1 + Δt).
  diffusion::SamplerConfig sampler;
  sampler.num_steps = 2;
  sampler.euler_grid = flux;
  const auto x = diffusion::euler_sample(
      [](const torch::Tensor& v, const torch::Tensor&, const torch::Tensor&) { return v; },
      diffusion::Objective(diffusion::ObjectiveKind::Linear), sampler, torch::ones({1, 1}), torch::zeros({1}));
  const double f1 = flux[1].item<double>();
  CHECK(x.item<double>() == doctest::Approx((1 + (f1 - 1)) * (1 - f1)));
}

TEST_CASE("flux: the attention mask and the embedded guidance change the prediction") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 42);
  auto config = family_config(s.dir, "flux", "flux", "probe", 1, 0);
  Trainer plain(config);
  config["flux_attention_masked_training"] = true;
  config["studio"]["run_name"] = "probe-masked";
  Trainer masked(config);
  torch::NoGradGuard no_grad;
  plain.backbone().module().eval();
  masked.backbone().module().eval();
  auto c = to_conditioning(plain.captions()->embeddings({"a large red disc in the upper left, on a dark background"}));
  REQUIRE(c.text_mask.defined());
  CHECK(c.text_mask.sum().item<int64_t>() < 512);  // padding is marked
  const auto x = torch::randn({1, 16, 16, 16});
  const auto sigma = torch::full({1}, 0.4);
  const auto a = plain.backbone().forward_conditioned(x, sigma, c, false).prediction;
  const auto b = masked.backbone().forward_conditioned(x, sigma, c, false).prediction;
  CHECK((a - b).abs().max().item<double>() > 1e-6);
  // Fully kept text: the mask changes nothing.
  auto all = c;
  all.text_mask = torch::ones_like(c.text_mask);
  const auto d = masked.backbone().forward_conditioned(x, sigma, all, false).prediction;
  CHECK(torch::allclose(a, d, 1e-5, 1e-6));
}

TEST_CASE("flux schnell: no guidance embedding, T5 256, flux_fast_schedule required as in SimpleTuner") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_flux_pipeline(s.dir.file("schnell"), tokenizers(), false, 43);
  auto config = family_config(s.dir, "flux", "schnell", "schnell", 2, 0);
  CHECK(contains(error_of([&] { Trainer t(config); }), "SimpleTuner trains schnell only with flux_fast_schedule"));
  config["model_flavour"] = "dev";
  CHECK(contains(error_of([&] { Trainer t(config); }), "model_flavour is dev, but"));
  CHECK(contains(error_of([&] { Trainer t(config); }), "is a schnell transformer (guidance_embeds false)"));
  config.erase("model_flavour");
  config["flux_fast_schedule"] = true;
  Trainer trainer(config);
  CHECK(contains(trainer.backbone().describe(), "schnell: no guidance embedding"));
  CHECK(written_config(trainer.run_directory().path())["tokenizer_max_length"] == 256);
  REQUIRE(trainer.run() == 0);
  // An SD3 folder given as flux is named.
  write_tiny_sd3_pipeline(s.dir.file("sd3"), tokenizers(), 3);
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "flux", "sd3", "bad", 1, 0)); }),
                 "holds a StableDiffusion3Pipeline (a sd3 model); model_family flux"));
}

TEST_CASE("chroma: T5 with its mask (first padding token kept), approximator modulations, REPA") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_chroma_pipeline(s.dir.file("chroma"), tokenizers(), 51);
  auto config = family_config(s.dir, "chroma", "chroma", "chroma", 12, 1);
  {
    Trainer trainer(config);
    CHECK(contains(trainer.backbone().describe(), "distilled-guidance approximator"));
    CHECK(written_config(trainer.run_directory().path())["tokenizer_max_length"] == 512);
    const auto c =
        to_conditioning(trainer.captions()->embeddings({"a large red disc in the upper left, on a dark background"}));
    REQUIRE(c.text_mask.defined());
    // The empty prompt is the end token alone: the mask keeps it and the padding token after it.
    const auto empty = to_conditioning(trainer.captions()->unconditional());
    CHECK(empty.text_mask.sum().item<int64_t>() == 2);
    CHECK(c.text_mask[0].sum().item<int64_t>() > 2);
    CHECK(c.text_mask[0].slice(0, 0, c.text_mask[0].sum().item<int64_t>()).all().item<bool>());
  }
  check_training_run(config, 12);
  auto resume = config;
  resume["studio"]["run_name"] = "chroma-resume";
  check_resume(s.dir, resume, "chroma-resume");
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "chroma", "chroma", "bad", 1, 5)); }),
                 "it has 1 double-stream and 2 single-stream blocks"));
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 3);
  CHECK(contains(error_of([&] { Trainer t(family_config(s.dir, "chroma", "flux", "bad", 1, 0)); }),
                 "holds a FluxPipeline (a flux model); model_family chroma trains from a ChromaPipeline folder"));
}

TEST_CASE("flux and sd3 LoRA: the family's default targets adapted, the base frozen, the adapter file written") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 61);
  write_tiny_sd3_pipeline(s.dir.file("sd3"), tokenizers(), 62);
  for (const char* family : {"flux", "sd3"}) {
    auto config = family_config(s.dir, family, family, std::string(family) + "-lora", 4, 0);
    config["model_type"] = "lora";
    config["lora_rank"] = 4;
    config["learning_rate"] = 1e-2;
    Trainer trainer(config);
    std::map<std::string, torch::Tensor> before;
    for (const auto& p : trainer.backbone().module().named_parameters()) {
      CHECK(!p.value().requires_grad());
      before[p.key()] = p.value().clone();
    }
    REQUIRE(trainer.run() == 0);
    for (const auto& p : trainer.backbone().module().named_parameters())
      CHECK(torch::equal(p.value(), before[p.key()]));
    const auto m = metrics_of(trainer.run_directory().path());
    REQUIRE(m.size() == 4);
    MESSAGE(std::string(family) << " LoRA: loss first " << m.front()["loss"] << ", last " << m.back()["loss"]);
    const auto file = io::SafetensorsFile::open(trainer.run_directory().path() + "/" + adapters::kLoraFileName);
    int adapted = 0;
    bool single = false, attention = false;
    for (const auto& name : file.names()) {
      if (!contains(name, "lora_A")) continue;
      ++adapted;
      single = single || contains(name, "single_transformer_blocks.1.");
      attention = attention || contains(name, "transformer_blocks.1.attn.to_q.");
    }
    CHECK(adapted > 0);
    CHECK(attention);
    CHECK(single == (std::string(family) == "flux"));  // SD3 has joint blocks only
  }
}

TEST_CASE("gradient checkpointing per block leaves the losses unchanged (sd3, flux with the mask, chroma)") {
  torch::set_num_threads(1);
  Setup s;
  write_tiny_sd3_pipeline(s.dir.file("sd3"), tokenizers(), 71);
  write_tiny_flux_pipeline(s.dir.file("flux"), tokenizers(), true, 72);
  write_tiny_chroma_pipeline(s.dir.file("chroma"), tokenizers(), 73);
  for (const char* family : {"sd3", "flux", "chroma"}) {
    {
      // The first run fills the latent, token and text caches, which draws from the generator: both compared runs
      // then start from warm caches.
      Trainer warm(family_config(s.dir, family, family, std::string(family) + "-warm", 1, 1));
      REQUIRE(warm.run() == 0);
    }
    std::vector<double> losses[2];
    for (int checkpointing = 0; checkpointing < 2; ++checkpointing) {
      const std::string name = std::string(family) + (checkpointing ? "-ckpt" : "-plain");
      auto config = family_config(s.dir, family, family, name, 3, 1);
      config["gradient_checkpointing"] = checkpointing == 1;
      config["flux_attention_masked_training"] = true;
      Trainer trainer(config);
      REQUIRE(trainer.run() == 0);
      for (const auto& m : metrics_of(trainer.run_directory().path())) losses[checkpointing].push_back(m["loss"]);
    }
    REQUIRE(losses[0].size() == 3);
    REQUIRE(losses[1].size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(losses[1][i] == doctest::Approx(losses[0][i]).epsilon(1e-5));
  }
}
