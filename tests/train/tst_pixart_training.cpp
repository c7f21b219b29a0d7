// PixArt-Σ trained from a diffusers pipeline folder (a tiny random one in the real layout) as SimpleTuner trains it:
// T5 states with their mask into the encoder and the transformer, SDXL's VAE scaling, epsilon on the scheduler's
// linear betas, the learned-sigma half dropped, REPA on a transformer block; the loss falls, resume is exact, samples
// are drawn from the prompts, LoRA adapts the attention projections; foreign folders and bad indices are named.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/adapters/lora_file.h"
#include "core/base/error.h"
#include "core/config/family_pipeline.h"
#include "core/config/native_training.h"
#include "core/data/demo_dataset.h"
#include "core/io/safetensors.h"
#include "core/models/pixart_official_names.h"
#include "core/models/pixart_transformer.h"
#include "core/text/text_conditioning.h"
#include "core/train/caption_conditioning.h"
#include "core/train/family_conditioning.h"
#include "core/train/tiny_pipeline.h"
#include "core/train/tiny_pipeline_pixart.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"
#include "tests/run_files.h"

using namespace repa;
using namespace repa::train;
namespace fs = std::filesystem;
using repa::test::events_of;
using repa::test::metrics_of;
using repa::test::losses_of;
using repa::test::mean;
using repa::test::contains;
using repa::test::error_of;

namespace {

const char* kPrompt = "a large red disc in the upper left, on a dark background";

nlohmann::json pixart_config(const test::ScratchDir& dir, const std::string& name, int64_t steps,
                             const std::string& pipeline = "pixart") {
  return {{"model_family", "pixart"},
          {"pretrained_model_name_or_path", dir.file(pipeline)},
          {"output_dir", dir.file("runs")},
          {"resolution", 32},
          {"max_train_steps", steps},
          {"train_batch_size", 4},
          {"learning_rate", 1e-3},
          {"lr_scheduler", "constant"},
          {"seed", 7},
          {"max_grad_norm", 1.0},
          {"validation_step_interval", 0},
          {"validation_num_inference_steps", 2},
          {"validation_prompt", kPrompt},
          {"caption_strategy", "textfile"},
          {"crepa_enabled", true},
          {"crepa_block_index", 1},
          {"crepa_model", "dinov2_vits14"},
          {"crepa_encoder_image_size", 28},
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
  explicit Setup(const TinyPixArtOptions& options = {}) {
    data::generate_demo_dataset(dir.file("data"), {2, 48, 3});  // 12 captioned images
    write_tiny_pixart_pipeline(dir.file("pixart"), test::fixture_path("tokenizers/t5/spiece.model"), 31, options);
  }
};

}  // namespace

TEST_CASE("pixart: native family; a foreign folder, a foreign transformer and a bad block index are named") {
  CHECK(config::native_training_blocker({{"model_family", "pixart"}}).empty());
  Setup s;
  // An SD pipeline given as pixart: no transformer/.
  write_tiny_sd_pipeline(s.dir.file("sd"), "sd1x", test::fixture_path("tokenizers/clip"), 3);
  CHECK(contains(config::pipeline_folder_problem(pixart_config(s.dir, "sd", 1, "sd")),
                 "lacks transformer/ for model_family 'pixart'"));
  CHECK(contains(error_of([&] { Trainer t(pixart_config(s.dir, "sd", 1, "sd")); }), "lacks transformer/"));
  // Another family's transformer in transformer/.
  fs::copy(s.dir.file("pixart"), s.dir.file("sd3ish"), fs::copy_options::recursive);
  {
    auto json = nlohmann::json::parse(std::ifstream(s.dir.file("sd3ish/transformer/config.json")));
    json["_class_name"] = "SD3Transformer2DModel";
    std::ofstream(s.dir.file("sd3ish/transformer/config.json")) << json.dump();
  }
  CHECK(contains(error_of([&] { Trainer t(pixart_config(s.dir, "sd3", 1, "sd3ish")); }),
                 "is a SD3Transformer2DModel, not a PixArtTransformer2DModel; model_family is pixart"));
  // crepa_block_index past the three blocks.
  auto bad = pixart_config(s.dir, "bad", 1);
  bad["crepa_block_index"] = 3;
  const auto message = error_of([&] { Trainer t(bad); });
  CHECK(contains(message, "crepa_block_index 3 is not a block"));
  CHECK(contains(message, "it has 3 transformer_blocks (0-based indices 0..2)"));
  // U-REPA taps a UNet's mid block, which PixArt has not.
  auto urepa = pixart_config(s.dir, "urepa", 1);
  urepa["crepa_enabled"] = false;
  urepa["urepa_enabled"] = true;
  urepa["urepa_model"] = "dinov2_vits14";  // the check comes after the teacher tokens are cached: keep them small
  urepa["urepa_encoder_image_size"] = 28;
  CHECK(
      contains(error_of([&] { Trainer t(urepa); }), "urepa_enabled is set for a transformer (model_family 'pixart')"));
  // A T5 of another width than caption_channels.
  write_tiny_pixart_pipeline(s.dir.file("wide"), test::fixture_path("tokenizers/t5/spiece.model"), 31, {});
  fs::remove_all(s.dir.file("wide/text_encoder"));
  fs::copy(s.dir.file("pixart/text_encoder"), s.dir.file("wide/text_encoder"));
  {
    auto json = nlohmann::json::parse(std::ifstream(s.dir.file("wide/transformer/config.json")));
    json["caption_channels"] = 32;
    std::ofstream(s.dir.file("wide/transformer/config.json")) << json.dump();
  }
  CHECK(contains(error_of([&] { Trainer t(pixart_config(s.dir, "wide", 1, "wide")); }),
                 "takes 32-wide caption states (caption_channels), the text encoder gives 16-wide ones"));
}

TEST_CASE("pixart: T5 with its mask, epsilon on linear betas, REPA on a block; loss falls, samples drawn") {
  torch::set_num_threads(1);
  Setup s;
  auto config = pixart_config(s.dir, "repa", 24);
  config["validation_step_interval"] = 24;
  Trainer trainer(config);
  const auto described = trainer.backbone().describe();
  CHECK(contains(described, "pixart PixArtTransformer2DModel"));
  CHECK(contains(described, "learned sigma"));
  CHECK(contains(described, "REPA tap after transformer_blocks.1"));
  CHECK(trainer.backbone().tap_width() == 24);
  CHECK(trainer.captions()->width() == 16);
  REQUIRE(trainer.run() == 0);
  const auto run = trainer.run_directory().path();
  const auto written = nlohmann::json::parse(std::ifstream(run + "/config.json"));
  CHECK(written["studio"]["objective"] == "vp_epsilon");
  CHECK(written["studio"]["text_conditioning"] == "pixart");
  CHECK(written["studio"]["latent_scaling_factor"].get<double>() == doctest::Approx(0.13025));
  CHECK(written["studio"]["sampler"] == "ddim");
  const auto metrics = metrics_of(run);
  REQUIRE(metrics.size() == 24);
  CHECK(metrics[0].contains("crepa_loss"));
  CHECK(metrics[0]["crepa_loss"].get<double>() != 0.0);
  const auto losses = losses_of(run);
  MESSAGE("pixart REPA run: loss first 4 " << mean(losses, 0, 4) << ", last 4 " << mean(losses, 20, 24));
  CHECK(mean(losses, 20, 24) < mean(losses, 0, 4));
  std::vector<double> diffusion;
  for (const auto& m : metrics) diffusion.push_back(m["diffusion_loss"].get<double>());
  MESSAGE("diffusion loss first 4 " << mean(diffusion, 0, 4) << ", last 4 " << mean(diffusion, 20, 24));
  CHECK(mean(diffusion, 20, 24) < mean(diffusion, 0, 4));
  const auto samples = events_of(run, "sample");
  REQUIRE(samples.size() == 1);
  CHECK(samples[0]["classes"][0] == kPrompt);
  CHECK(fs::exists(samples[0]["path"].get<std::string>()));
}

TEST_CASE("pixart: resume from a checkpoint reproduces the losses exactly") {
  torch::set_num_threads(1);
  Setup s;
  auto config = pixart_config(s.dir, "full", 6);
  config["checkpoint_step_interval"] = 3;
  config["caption_dropout_probability"] = 0.3;
  {
    Trainer trainer(config);
    REQUIRE(trainer.run() == 0);
  }
  const auto full = losses_of(s.dir.file("runs/full"));
  REQUIRE(full.size() == 6);
  auto again = config;
  again["resume_from_checkpoint"] = s.dir.file("runs/full/checkpoints/checkpoint-3");
  fs::rename(s.dir.file("runs/full/metrics.jsonl"), s.dir.file("full-metrics.jsonl"));
  {
    Trainer resumed(again);
    REQUIRE(resumed.run() == 0);
  }
  const auto tail = losses_of(s.dir.file("runs/full"));
  REQUIRE(tail.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(tail[i] == full[3 + i]);
}

TEST_CASE("pixart: the text mask reaches the transformer; the learned-sigma half is dropped as SimpleTuner does") {
  torch::set_num_threads(1);
  Setup s;
  Trainer probe(pixart_config(s.dir, "probe", 1));
  torch::NoGradGuard no_grad;
  probe.backbone().module().eval();
  auto c = to_conditioning(probe.captions()->embeddings({kPrompt}));
  REQUIRE(c.text_mask.defined());
  CHECK(c.text.sizes() == torch::IntArrayRef({1, 300, 16}));
  const int64_t kept = c.text_mask.sum().item<int64_t>();
  CHECK(kept > 3);
  CHECK(kept < 300);
  const auto x = torch::randn({1, 4, 16, 16});
  const auto t = torch::full({1}, 500.0);
  const auto masked = probe.backbone().forward_conditioned(x, t, c, true);
  CHECK(masked.prediction.sizes() == x.sizes());
  CHECK(masked.tapped.sizes() == torch::IntArrayRef({1, 64, 24}));
  auto unmasked = c;
  unmasked.text_mask = torch::ones_like(c.text_mask);
  const auto open = probe.backbone().forward_conditioned(x, t, unmasked, false).prediction;
  CHECK((masked.prediction - open).abs().max().item<double>() > 1e-5);

  // The transformer itself predicts 8 channels; the run trains the first 4 (the noise), as chunk(2, dim=1)[0].
  models::PixArtTransformer raw(models::PixArtTransformerConfig::from_diffusers(
      nlohmann::json::parse(std::ifstream(s.dir.file("pixart/transformer/config.json")))));
  models::load_pixart_weights(raw, s.dir.file("pixart/transformer"));
  raw->eval();
  models::PixArtInputs in;
  in.hidden_states = x;
  in.timestep = t;
  in.encoder_hidden_states = c.text;
  in.encoder_attention_mask = c.text_mask;
  const auto full = raw->forward(in).prediction;
  CHECK(full.size(1) == 8);
  CHECK(torch::allclose(masked.prediction, full.narrow(1, 0, 4), 1e-6, 1e-6));
  CHECK(!torch::allclose(masked.prediction, full.narrow(1, 4, 4), 1e-3, 1e-3));
}

TEST_CASE("pixart: resolution and aspect-ratio conditions are the batch's pixel size when the checkpoint uses them") {
  torch::set_num_threads(1);
  TinyPixArtOptions options;
  options.additional_conditions = true;
  Setup s(options);
  Trainer probe(pixart_config(s.dir, "conditions", 1));
  CHECK(contains(probe.backbone().describe(), "resolution + aspect-ratio conditions"));
  {
    torch::NoGradGuard no_grad;
    probe.backbone().module().eval();
    auto c = to_conditioning(probe.captions()->embeddings({kPrompt}));
    const auto x = torch::randn({1, 4, 16, 16});
    const auto t = torch::full({1}, 300.0);
    const auto ours = probe.backbone().forward_conditioned(x, t, c, false).prediction;
    models::PixArtTransformer raw(models::PixArtTransformerConfig::from_diffusers(
        nlohmann::json::parse(std::ifstream(s.dir.file("pixart/transformer/config.json")))));
    models::load_pixart_weights(raw, s.dir.file("pixart/transformer"));
    raw->eval();
    models::PixArtInputs in;
    in.hidden_states = x;
    in.timestep = t;
    in.encoder_hidden_states = c.text;
    in.encoder_attention_mask = c.text_mask;
    in.aspect_ratio = torch::ones({1, 1});
    in.resolution = torch::tensor({{32.0f, 32.0f}});  // the 32 px images the 16x16 latents come from
    CHECK(torch::allclose(ours, raw->forward(in).prediction.narrow(1, 0, 4), 1e-6, 1e-6));
    in.resolution = torch::tensor({{16.0f, 16.0f}});  // the latent size: a different condition
    CHECK(!torch::allclose(ours, raw->forward(in).prediction.narrow(1, 0, 4), 1e-5, 1e-5));
  }
  // And a run trains with them.
  Trainer run(pixart_config(s.dir, "conditions-run", 2));
  REQUIRE(run.run() == 0);
  for (double loss : losses_of(s.dir.file("runs/conditions-run"))) CHECK(std::isfinite(loss));
}

TEST_CASE("pixart LoRA: SimpleTuner's attention targets adapted, the base frozen, the adapter file written") {
  torch::set_num_threads(1);
  Setup s;
  auto config = pixart_config(s.dir, "lora", 8);
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
  for (const auto& p : trainer.backbone().module().named_parameters()) CHECK(torch::equal(p.value(), before[p.key()]));
  const auto losses = losses_of(s.dir.file("runs/lora"));
  REQUIRE(losses.size() == 8);
  MESSAGE("pixart LoRA run: loss first " << losses.front() << ", last " << losses.back());
  const auto file = io::SafetensorsFile::open(s.dir.file(std::string("runs/lora/") + adapters::kLoraFileName));
  int adapted = 0;
  bool to_q = false, to_out = false, attn2 = false, ff = false;
  for (const auto& name : file.names()) {
    if (!contains(name, "lora_A")) continue;
    ++adapted;
    to_q = to_q || contains(name, "transformer_blocks.0.attn1.to_q.");
    to_out = to_out || contains(name, "attn1.to_out.0.");
    attn2 = attn2 || contains(name, "attn2.to_k.");
    ff = ff || contains(name, ".ff.");
  }
  CHECK(adapted == 3 * 2 * 4);  // 3 blocks x (attn1, attn2) x (to_q, to_k, to_v, to_out.0)
  CHECK(to_q);
  CHECK(to_out);
  CHECK(attn2);
  CHECK(!ff);
}

TEST_CASE("pixart: prompts are lower-cased and stripped before T5, as diffusers' PixArt pipeline does") {
  torch::set_num_threads(1);
  Setup s;
  const auto spec = text::TextConditioningSpec::for_family("pixart");
  CHECK(spec.lowercase_prompts);
  CHECK(spec.to_json()["lowercase_prompts"] == true);
  CHECK(!text::TextConditioningSpec::for_family("sd1x").to_json().contains("lowercase_prompts"));
  text::TextEmbedder embedder(spec, s.dir.file("pixart"));
  const auto out = embedder.encode({"  A Large RED Disc\n", "a large red disc", "a large red disc."});
  CHECK(torch::equal(out[0].at("hidden"), out[1].at("hidden")));
  CHECK(torch::equal(out[0].at("mask"), out[1].at("mask")));
  CHECK(!torch::equal(out[1].at("hidden"), out[2].at("hidden")));
  auto cased = spec;
  cased.lowercase_prompts = false;
  const auto raw = text::TextEmbedder(cased, s.dir.file("pixart")).encode({"  A Large RED Disc\n", "a large red disc"});
  CHECK(!torch::equal(raw[0].at("hidden"), raw[1].at("hidden")));
  CHECK(torch::equal(raw[1].at("hidden"), out[1].at("hidden")));
}

namespace {

// The tiny transformer's diffusers tensors under the official PixArt names (x_embedder, t_block, blocks.N.attn.qkv,
// cross_attn.kv_linear, final_layer, ...), as a PixArt-Σ release checkpoint stores them.
io::NamedTensors official_names(const std::string& diffusers_file, int64_t blocks) {
  const auto file = io::SafetensorsFile::open(diffusers_file);
  auto get = [&](const std::string& name) { return file.tensor(name).clone(); };
  io::NamedTensors out;
  const std::pair<const char*, const char*> renames[] = {
      {"x_embedder.proj.", "pos_embed.proj."},
      {"y_embedder.y_proj.fc1.", "caption_projection.linear_1."},
      {"y_embedder.y_proj.fc2.", "caption_projection.linear_2."},
      {"t_embedder.mlp.0.", "adaln_single.emb.timestep_embedder.linear_1."},
      {"t_embedder.mlp.2.", "adaln_single.emb.timestep_embedder.linear_2."},
      {"t_block.1.", "adaln_single.linear."},
      {"final_layer.linear.", "proj_out."}};
  for (const auto& [official, diffusers] : renames)
    for (const char* leaf : {"weight", "bias"})
      out.emplace_back(std::string(official) + leaf, get(std::string(diffusers) + leaf));
  out.emplace_back("final_layer.scale_shift_table", get("scale_shift_table"));
  for (int64_t i = 0; i < blocks; ++i) {
    const std::string o = "blocks." + std::to_string(i) + ".", d = "transformer_blocks." + std::to_string(i) + ".";
    out.emplace_back(o + "scale_shift_table", get(d + "scale_shift_table"));
    for (const char* leaf : {"weight", "bias"}) {
      const std::string l = leaf;
      out.emplace_back(o + "attn.qkv." + l, torch::cat({get(d + "attn1.to_q." + l), get(d + "attn1.to_k." + l),
                                                        get(d + "attn1.to_v." + l)}));
      out.emplace_back(o + "attn.proj." + l, get(d + "attn1.to_out.0." + l));
      out.emplace_back(o + "cross_attn.q_linear." + l, get(d + "attn2.to_q." + l));
      out.emplace_back(o + "cross_attn.kv_linear." + l,
                       torch::cat({get(d + "attn2.to_k." + l), get(d + "attn2.to_v." + l)}));
      out.emplace_back(o + "cross_attn.proj." + l, get(d + "attn2.to_out.0." + l));
      out.emplace_back(o + "mlp.fc1." + l, get(d + "ff.net.0.proj." + l));
      out.emplace_back(o + "mlp.fc2." + l, get(d + "ff.net.2." + l));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("pixart: a transformer/ holding an official PixArt checkpoint trains like the diffusers folder") {
  torch::set_num_threads(1);
  Setup s;
  fs::copy(s.dir.file("pixart"), s.dir.file("official"), fs::copy_options::recursive);
  const auto weights = s.dir.file("official/transformer/diffusion_pytorch_model.safetensors");
  const auto official = official_names(weights, 3);
  fs::remove(weights);
  io::save_safetensors(weights, official);
  REQUIRE(models::has_official_pixart_names(io::SafetensorsFile::open(weights).names()));
  Trainer a(pixart_config(s.dir, "diffusers", 1));
  Trainer b(pixart_config(s.dir, "official", 2, "official"));
  {
    torch::NoGradGuard no_grad;
    a.backbone().module().eval();
    b.backbone().module().eval();
    const auto c = to_conditioning(a.captions()->embeddings({kPrompt}));
    const auto x = torch::randn({2, 4, 16, 16});
    const auto t = torch::tensor({10.0, 900.0});
    auto two = c.rows(torch::tensor({0, 0}, torch::kLong));
    const auto pa = a.backbone().forward_conditioned(x, t, two, true);
    const auto pb = b.backbone().forward_conditioned(x, t, two, true);
    CHECK(torch::allclose(pa.prediction, pb.prediction, 1e-6, 1e-6));
    CHECK(torch::allclose(pa.tapped, pb.tapped, 1e-6, 1e-6));
    b.backbone().module().train();
  }
  REQUIRE(b.run() == 0);
  const auto losses = losses_of(s.dir.file("runs/official"));
  REQUIRE(losses.size() == 2);
  for (double loss : losses) CHECK(std::isfinite(loss));
}

TEST_CASE("pixart: gradient checkpointing reruns the blocks in backward and gives the same losses") {
  torch::set_num_threads(1);
  Setup s;
  // A warm cache first, so that both measured runs start from the same random stream.
  Trainer(pixart_config(s.dir, "warm", 1)).run();
  auto plain = pixart_config(s.dir, "plain", 3);
  auto checkpointed = pixart_config(s.dir, "checkpointed", 3);
  checkpointed["gradient_checkpointing"] = true;
  Trainer a(plain);
  REQUIRE(a.run() == 0);
  Trainer b(checkpointed);
  CHECK(contains(b.backbone().describe(), "gradient checkpointing"));
  CHECK(!contains(a.backbone().describe(), "gradient checkpointing"));
  REQUIRE(b.run() == 0);
  const auto la = losses_of(s.dir.file("runs/plain")), lb = losses_of(s.dir.file("runs/checkpointed"));
  REQUIRE(la.size() == 3);
  REQUIRE(lb.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(lb[i] == doctest::Approx(la[i]).epsilon(1e-5));
}

TEST_CASE("pixart: SimpleTuner's rules: 300 T5 tokens whatever is set, max_grad_norm at most 0.01") {
  Setup s;
  auto config = pixart_config(s.dir, "rules", 1);
  config["tokenizer_max_length"] = 77;
  const auto pipeline = config::resolve_family_pipeline(config);
  auto ruled = config::with_family_settings(config, pipeline);
  CHECK(ruled["tokenizer_max_length"] == 300);
  CHECK(ruled["max_grad_norm"].get<double>() == doctest::Approx(0.01));
  config["max_grad_norm"] = 0.005;
  CHECK(config::with_family_settings(config, pipeline)["max_grad_norm"].get<double>() == doctest::Approx(0.005));
  config["max_grad_norm"] = 1.0;
  config["i_know_what_i_am_doing"] = true;
  CHECK(config::with_family_settings(config, pipeline)["max_grad_norm"].get<double>() == doctest::Approx(1.0));
  config.erase("max_grad_norm");
  CHECK(config::with_family_settings(config, pipeline)["max_grad_norm"].get<double>() == doctest::Approx(0.01));
  config["max_grad_norm"] = "big";
  CHECK(contains(error_of([&] { config::with_family_settings(config, pipeline); }), "max_grad_norm must be a number"));
  // The run's T5 keeps 300 tokens.
  Trainer run(pixart_config(s.dir, "rules-run", 1));
  auto c = to_conditioning(run.captions()->embeddings({kPrompt}));
  CHECK(c.text.size(1) == 300);
}
