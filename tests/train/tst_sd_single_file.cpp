// SD 1.x, SD 2.x and SDXL single files in the LDM/SGM names: tiny random pipelines written as one .safetensors and
// read back give every tensor bit for bit (SD 2.x's and SDXL's OpenCLIP in_proj fused and split again, bigG's
// text_projection transposed); an original file without this project's metadata reads with inferred configs, SD
// 2.x dropping its last text layer as diffusers does; a file of another family and missing tokenizers are named;
// a tiny SDXL run trains from the single file through the converted folder in the model cache.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/config/family_pipeline.h"
#include "core/config/sd_single_file.h"
#include "core/data/demo_dataset.h"
#include "core/io/safetensors.h"
#include "core/models/sd_pipeline_folder.h"
#include "core/train/sd_single_file_export.h"
#include "core/train/tiny_pipeline.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using namespace repa;
namespace fs = std::filesystem;
using repa::test::contains;
using repa::test::error_of;

namespace {

// Points the model cache into the scratch folder for the life of the object.
class CacheScope {
 public:
  explicit CacheScope(const std::string& folder) {
    if (const char* old = std::getenv("XDG_CACHE_HOME")) old_ = old, had_ = true;
    ::setenv("XDG_CACHE_HOME", folder.c_str(), 1);
  }
  ~CacheScope() { had_ ? ::setenv("XDG_CACHE_HOME", old_.c_str(), 1) : ::unsetenv("XDG_CACHE_HOME"); }

 private:
  std::string old_;
  bool had_ = false;
};

void check_same(const models::TensorMap& a, const models::TensorMap& b) {
  CHECK(a.size() == b.size());
  for (const auto& [name, t] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name));
    CHECK(t.sizes() == b.at(name).sizes());
    CHECK(torch::equal(t, b.at(name)));
  }
}

models::TensorMap read_all(const std::string& path) {
  const auto file = io::SafetensorsFile::open(path);
  models::TensorMap out;
  for (const auto& name : file.names()) out[name] = file.tensor(name);
  return out;
}

// The same tensors without this project's repa.* metadata: what an original checkpoint looks like.
void save_without_metadata(const models::TensorMap& tensors, const std::string& path) {
  io::save_safetensors(path, io::NamedTensors(tensors.begin(), tensors.end()), {{"format", "pt"}});
}

nlohmann::json sd_config(const test::ScratchDir& dir, const std::string& family, const std::string& model) {
  return {{"model_family", family}, {"pretrained_model_name_or_path", model}, {"output_dir", dir.file("runs")}};
}

}  // namespace

TEST_CASE("sd1x, sd2x and sdxl pipelines round-trip through their LDM/SGM single file, every tensor exact") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  for (const std::string family : {"sd1x", "sd2x", "sdxl"}) {
    CAPTURE(family);
    const auto folder = dir.file(family);
    train::write_tiny_sd_pipeline(folder, family, test::fixture_path("tokenizers/clip"), 7);
    const auto file = dir.file(family + ".safetensors");
    models::write_ldm_single_file(folder, family, file);
    const auto official = read_all(file);
    // Only LDM/SGM names: no diffusers name is left.
    for (const auto& item : official) {
      CAPTURE(item.first);
      CHECK(item.first.find("down_blocks") == std::string::npos);
      if (family == "sd2x") CHECK(item.first.find("encoder.layers.") == std::string::npos);
    }
    const auto diffusers = models::read_sd_pipeline_folder(folder, family);
    const auto& unet = diffusers.weights.at("unet");
    CHECK(torch::equal(official.at("model.diffusion_model.input_blocks.0.0.weight"), unet.at("conv_in.weight")));
    CHECK(torch::equal(official.at("model.diffusion_model.out.2.bias"), unet.at("conv_out.bias")));
    // down block 1 (the attention block) starts at input_blocks.3 with layers_per_block 1: its first resnet and
    // attention; the first up block's upsampler follows its attention at .2.
    CHECK(torch::equal(official.at("model.diffusion_model.input_blocks.3.0.in_layers.2.weight"),
                       unet.at("down_blocks.1.resnets.0.conv1.weight")));
    CHECK(torch::equal(official.at("model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight"),
                       unet.at("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight")));
    CHECK(torch::equal(official.at("model.diffusion_model.input_blocks.2.0.op.weight"),
                       unet.at("down_blocks.0.downsamplers.0.conv.weight")));
    CHECK(torch::equal(official.at("model.diffusion_model.output_blocks.1.2.conv.weight"),
                       unet.at("up_blocks.0.upsamplers.0.conv.weight")));
    CHECK(official.count("model.diffusion_model.label_emb.0.0.weight") == (family == "sdxl" ? 1u : 0u));
    // The VAE's attention projections are 1×1 convolutions under the LDM names; its up blocks count down.
    const auto& vae = diffusers.weights.at("vae");
    const auto q = official.at("first_stage_model.encoder.mid.attn_1.q.weight");
    CHECK(q.dim() == 4);
    CHECK(torch::equal(q.flatten(1), vae.at("encoder.mid_block.attentions.0.to_q.weight")));
    CHECK(torch::equal(official.at("first_stage_model.decoder.up.1.block.0.conv1.weight"),
                       vae.at("decoder.up_blocks.0.resnets.0.conv1.weight")));
    if (family == "sd1x")
      CHECK(torch::equal(official.at("cond_stage_model.transformer.text_model.encoder.layers.2.mlp.fc2.weight"),
                         diffusers.weights.at("text_encoder").at("text_model.encoder.layers.2.mlp.fc2.weight")));
    const std::string open_clip = family == "sd2x" ? "cond_stage_model.model." : "conditioner.embedders.1.model.";
    const std::string open_clip_component = family == "sd2x" ? "text_encoder" : "text_encoder_2";
    if (family != "sd1x") {
      const auto& te = diffusers.weights.at(open_clip_component);
      const std::string l = "text_model.encoder.layers.1.self_attn.";
      const auto fused = official.at(open_clip + "transformer.resblocks.1.attn.in_proj_weight");
      CHECK(fused.size(0) == 3 * fused.size(1));
      CHECK(torch::equal(
          fused, torch::cat({te.at(l + "q_proj.weight"), te.at(l + "k_proj.weight"), te.at(l + "v_proj.weight")})));
      CHECK(torch::equal(official.at(open_clip + "transformer.resblocks.1.attn.in_proj_bias"),
                         torch::cat({te.at(l + "q_proj.bias"), te.at(l + "k_proj.bias"), te.at(l + "v_proj.bias")})));
      CHECK(torch::equal(official.at(open_clip + "positional_embedding"),
                         te.at("text_model.embeddings.position_embedding.weight")));
    }
    if (family == "sdxl") {
      CHECK(torch::equal(official.at("conditioner.embedders.1.model.text_projection"),
                         diffusers.weights.at("text_encoder_2").at("text_projection.weight").t()));
      CHECK(official.count("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"));
    }
    // Back: every part, every tensor, and the configs.
    const auto back = models::read_ldm_single_file(file, family);
    CHECK(back.weights.size() == diffusers.weights.size());
    for (const auto& [component, tensors] : diffusers.weights) {
      CAPTURE(component);
      REQUIRE(back.weights.count(component));
      check_same(tensors, back.weights.at(component));
      CHECK(back.configs.at(component) == diffusers.configs.at(component));
    }
    CHECK(back.configs.at("scheduler") == diffusers.configs.at("scheduler"));
  }
}

TEST_CASE("an original single file (no metadata) reads with configs inferred from the shapes") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  for (const std::string family : {"sd1x", "sd2x", "sdxl"}) {
    CAPTURE(family);
    const auto folder = dir.file(family);
    train::write_tiny_sd_pipeline(folder, family, test::fixture_path("tokenizers/clip"), 9);
    models::write_ldm_single_file(folder, family, dir.file("with.safetensors"));
    auto tensors = read_all(dir.file("with.safetensors"));
    // What original files carry beside the model: the LDM scheduler's buffers, an EMA copy, CLIP's position ids.
    tensors["alphas_cumprod"] = torch::ones({1000});
    tensors["model_ema.decay"] = torch::tensor(0.9999f);
    tensors["first_stage_model.loss.logvar"] = torch::zeros({});
    if (family == "sd1x")
      tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch::arange(77).unsqueeze(0);
    if (family == "sd2x") tensors["cond_stage_model.model.text_projection"] = torch::randn({32, 32});
    const auto original = dir.file(family + "-original.safetensors");
    save_without_metadata(tensors, original);
    const auto diffusers = models::read_sd_pipeline_folder(folder, family);
    const auto back = models::read_ldm_single_file(original, family);
    const auto& unet = back.configs.at("unet");
    const auto& tiny = diffusers.configs.at("unet");
    CHECK(unet["block_out_channels"] == tiny["block_out_channels"]);
    CHECK(unet["layers_per_block"] == tiny["layers_per_block"]);
    CHECK(unet["down_block_types"] == tiny["down_block_types"]);
    CHECK(unet["up_block_types"] == tiny["up_block_types"]);
    CHECK(unet["cross_attention_dim"] == tiny["cross_attention_dim"]);
    CHECK(unet["use_linear_projection"] == tiny.value("use_linear_projection", false));
    CHECK(unet["sample_size"] == (family == "sdxl" ? 128 : family == "sd2x" ? 96 : 64));
    if (family == "sdxl") {
      CHECK(unet["addition_embed_type"] == "text_time");
      CHECK(unet["addition_time_embed_dim"] == 8);  // (32 + 6·8 − 32) / 6: the pooled width comes from bigG
      CHECK(back.configs.at("text_encoder_2")["projection_dim"] == 32);
      CHECK(back.configs.at("text_encoder_2")["hidden_act"] == "gelu");
    }
    CHECK(back.configs.at("vae")["block_out_channels"] == nlohmann::json({8, 16}));
    CHECK(back.configs.at("vae")["latent_channels"] == 4);
    CHECK(back.configs.at("vae")["scaling_factor"] == (family == "sdxl" ? 0.13025 : 0.18215));
    CHECK(back.configs.at("scheduler")["prediction_type"] == (family == "sd2x" ? "v_prediction" : "epsilon"));
    check_same(diffusers.weights.at("unet"), back.weights.at("unet"));
    check_same(diffusers.weights.at("vae"), back.weights.at("vae"));
    const auto& text = back.configs.at("text_encoder");
    if (family == "sd2x") {
      // SD 2.x conditions on OpenCLIP-H's penultimate layer: like diffusers, the last layer and the projection
      // of an original file are not read (3 layers in the file, 2 in the text encoder).
      CHECK(text["num_hidden_layers"] == 2);
      CHECK(back.weights.at("text_encoder").count("text_model.encoder.layers.1.mlp.fc1.weight"));
      CHECK_FALSE(back.weights.at("text_encoder").count("text_model.encoder.layers.2.mlp.fc1.weight"));
      CHECK(torch::equal(back.weights.at("text_encoder").at("text_model.encoder.layers.1.mlp.fc1.weight"),
                         diffusers.weights.at("text_encoder").at("text_model.encoder.layers.1.mlp.fc1.weight")));
    } else {
      CHECK(text["num_hidden_layers"] == 3);
      CHECK(text["hidden_act"] == "quick_gelu");
      check_same(diffusers.weights.at("text_encoder"), back.weights.at("text_encoder"));
    }
  }
}

TEST_CASE("the wrong family, a missing tensor and missing tokenizers are named") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  CacheScope cache(dir.file("cache"));
  train::write_tiny_sd_pipeline(dir.file("xl"), "sdxl", test::fixture_path("tokenizers/clip"), 3);
  fs::create_directories(dir.file("files"));
  const auto file = dir.file("files/xl.safetensors");
  models::write_ldm_single_file(dir.file("xl"), "sdxl", file);
  CHECK(contains(config::pipeline_folder_problem(sd_config(dir, "sd1x", file)),
                 "this checkpoint is SDXL: it has conditioner.embedders.1; model_family is sd1x"));
  CHECK(contains(error_of([&] { models::read_ldm_single_file(file, "sd2x"); }),
                 "this checkpoint is SDXL: it has conditioner.embedders.1; model_family is sd2x"));
  train::write_tiny_sd_pipeline(dir.file("one"), "sd1x", test::fixture_path("tokenizers/clip"), 3);
  models::write_ldm_single_file(dir.file("one"), "sd1x", dir.file("files/one.safetensors"));
  CHECK(contains(config::pipeline_folder_problem(sd_config(dir, "sdxl", dir.file("files/one.safetensors"))),
                 "this checkpoint is SD 1.x: it has cond_stage_model.transformer (CLIP-L); model_family is sdxl"));
  // Not an SD file at all.
  io::save_safetensors(dir.file("files/flux.safetensors"),
                       {{"double_blocks.0.img_attn.qkv.weight", torch::zeros({3, 1})}});
  CHECK(contains(config::pipeline_folder_problem(sd_config(dir, "sdxl", dir.file("files/flux.safetensors"))),
                 "is not a Stable Diffusion single file in the LDM/SGM names: it holds a Flux transformer"));
  // No tokenizer beside the file and none fetched: which folders, which files, where, and the fetch command.
  const auto problem = config::pipeline_folder_problem(sd_config(dir, "sdxl", file));
  CHECK(contains(problem,
                 "holds no tokenizer: model_family sdxl needs tokenizer/ and tokenizer_2/ (vocab.json, "
                 "merges.txt"));
  CHECK(contains(problem, dir.file("files/tokenizer") + "/"));
  CHECK(contains(problem,
                 "`repa-train fetch stabilityai/stable-diffusion-xl-base-1.0 --include 'tokenizer/*' "
                 "--include 'tokenizer_2/*'`"));
  CHECK(
      contains(error_of([&] { config::resolve_family_pipeline(sd_config(dir, "sdxl", file)); }), "holds no tokenizer"));
  // A fetched tokenizer counts as well as one beside the file.
  train::copy_clip_tokenizer(test::fixture_path("tokenizers/clip"),
                             dir.file("cache/repa-studio/models/stabilityai/stable-diffusion-xl-base-1.0/tokenizer"),
                             "<|endoftext|>");
  CHECK(contains(config::pipeline_folder_problem(sd_config(dir, "sdxl", file)), "needs tokenizer_2/ ("));
  // A part's missing or unknown tensor, named with the file and the part.
  auto tensors = read_all(file);
  tensors.erase("model.diffusion_model.middle_block.1.proj_out.bias");
  tensors["first_stage_model.encoder.mid.attn_1.extra"] = torch::zeros({1});
  save_without_metadata(tensors, dir.file("files/broken.safetensors"));
  CHECK(contains(error_of([&] { models::read_ldm_single_file(dir.file("files/broken.safetensors"), "sdxl"); }),
                 "the SDXL single file lacks middle_block.1.proj_out.bias"));
  tensors = read_all(file);
  tensors["first_stage_model.encoder.mid.attn_1.extra"] = torch::zeros({1});
  io::save_safetensors(dir.file("files/extra.safetensors"), io::NamedTensors(tensors.begin(), tensors.end()),
                       io::SafetensorsFile::open(file).metadata());
  CHECK(contains(error_of([&] { models::read_ldm_single_file(dir.file("files/extra.safetensors"), "sdxl"); }),
                 "(first_stage_model.*): tensors the SDXL single-file table does not know: encoder.mid.attn_1.extra"));
}

TEST_CASE("a tiny SDXL run trains from the single file, converted once into the model cache") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  CacheScope cache(dir.file("cache"));
  models::install_ldm_single_file_converter();
  data::generate_demo_dataset(dir.file("data"), {2, 48, 3});
  train::write_tiny_sd_pipeline(dir.file("xl"), "sdxl", test::fixture_path("tokenizers/clip"), 21);
  fs::create_directories(dir.file("files"));
  const auto file = dir.file("files/tiny-xl.safetensors");
  models::write_ldm_single_file(dir.file("xl"), "sdxl", file);
  for (const char* t : {"tokenizer", "tokenizer_2"})
    fs::copy(dir.file(std::string("xl/") + t), dir.file(std::string("files/") + t));
  nlohmann::json config = sd_config(dir, "sdxl", file);
  config.update({{"resolution", 32},
                 {"max_train_steps", 4},
                 {"train_batch_size", 4},
                 {"learning_rate", 1e-3},
                 {"lr_scheduler", "constant"},
                 {"seed", 5},
                 {"validation_step_interval", 0},
                 {"caption_strategy", "textfile"},
                 {"urepa_enabled", true},
                 {"urepa_model", "dinov2_vits14"},
                 {"urepa_encoder_image_size", 28},
                 {"checkpoint_step_interval", 4}});
  config["studio"] = {{"dataset_dir", dir.file("data")}, {"class_labels", false}, {"run_name", "single"},
                      {"encoder_random_init", true},     {"device", "cpu"},       {"num_workers", 0}};
  CHECK(config::pipeline_folder_problem(config).empty());
  const auto pipeline = config::resolve_family_pipeline(config);
  CHECK(pipeline.folder == config::sd_single_file_folder(file));
  CHECK(contains(pipeline.folder, dir.file("cache/repa-studio/models/.single-file/tiny-xl-")));
  CHECK(fs::exists(pipeline.denoiser_folder + "/config.json"));
  CHECK(fs::exists(pipeline.folder + "/tokenizer_2/vocab.json"));
  // The converted folder holds the pipeline's own weights.
  check_same(models::read_sd_pipeline_folder(dir.file("xl"), "sdxl").weights.at("unet"),
             models::read_sd_pipeline_folder(pipeline.folder, "sdxl").weights.at("unet"));
  const auto written = fs::last_write_time(pipeline.folder + "/unet/diffusion_pytorch_model.safetensors");
  train::Trainer trainer(config);
  CHECK(contains(trainer.backbone().describe(), "pooled text + time_ids"));
  REQUIRE(trainer.run() == 0);
  std::ifstream metrics(dir.file("runs/single/metrics.jsonl"));
  std::string line;
  int steps = 0;
  while (std::getline(metrics, line)) {
    const auto loss = nlohmann::json::parse(line)["loss"].get<double>();
    CHECK(std::isfinite(loss));
    ++steps;
  }
  CHECK(steps == 4);
  // Converted once: the run reused the folder.
  CHECK(fs::last_write_time(pipeline.folder + "/unet/diffusion_pytorch_model.safetensors") == written);
  const auto run_config = nlohmann::json::parse(std::ifstream(dir.file("runs/single/config.json")));
  CHECK(run_config["studio"]["text_encoder_path"] == pipeline.folder);

  // The fine-tuned UNet goes back out as a single file, with the pipeline's VAE and text encoders.
  const auto exported = train::export_sd_single_file(dir.file("runs/single"), dir.file("tuned.safetensors"), false);
  CHECK(exported.family == "sdxl");
  CHECK(exported.checkpoint == dir.file("runs/single/checkpoints/checkpoint-4"));
  const auto tuned = models::read_ldm_single_file(dir.file("tuned.safetensors"), "sdxl");
  check_same(read_all(dir.file("runs/single/checkpoints/checkpoint-4/model.safetensors")), tuned.weights.at("unet"));
  CHECK_FALSE(
      torch::equal(tuned.weights.at("unet").at("conv_in.weight"),
                   models::read_sd_pipeline_folder(dir.file("xl"), "sdxl").weights.at("unet").at("conv_in.weight")));
  const auto original = models::read_sd_pipeline_folder(dir.file("xl"), "sdxl");
  for (const std::string c : {"vae", "text_encoder", "text_encoder_2"})
    check_same(original.weights.at(c), tuned.weights.at(c));
  CHECK(contains(
      error_of([&] { train::export_sd_single_file(dir.file("runs/single"), dir.file("e.safetensors"), true); }),
      "has no ema.safetensors (the run trained without EMA)"));
}
