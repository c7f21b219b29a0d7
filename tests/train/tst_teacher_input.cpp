// studio.teacher_input: the teacher sees the dataset's pixels (REPA) or the VAE's reconstruction of them
// (SimpleTuner's decode of the clean latents); the choice keys the token cache, and SimpleTuner's decode
// options (crepa_use_tae, urepa_use_tae, crepa_drop_vae_encoder) act with the decode.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/data/center_crop.h"
#include "core/data/demo_dataset.h"
#include "core/data/image.h"
#include "core/data/image_tensor.h"
#include "core/io/safetensors.h"
#include "core/models/autoencoder_kl.h"
#include "core/train/checkpoint.h"
#include "core/train/trainer.h"
#include "core/train/training_data.h"
#include "tests/test_support.h"

using namespace repa::train;
namespace fs = std::filesystem;

namespace {

constexpr int kResolution = 16;

// A tiny diffusers-layout VAE folder with random weights (downsampling 2, 4 latent channels).
std::string write_tiny_vae(const repa::test::ScratchDir& dir) {
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
  torch::manual_seed(11);
  repa::models::AutoencoderKL vae(repa::models::AutoencoderKLConfig::from_json(vae_config));
  repa::io::save_safetensors(dir.file("vae/diffusion_pytorch_model.safetensors"), module_state(*vae));
  return dir.file("vae");
}

nlohmann::json run_config(const repa::test::ScratchDir& dir, const std::string& teacher_input) {
  return {{"output_dir", dir.file("runs")},
          {"resolution", kResolution},
          {"max_train_steps", 2},
          {"train_batch_size", 2},
          {"learning_rate", 1e-3},
          {"lr_scheduler", "constant"},
          {"seed", 2},
          {"validation_step_interval", 2},
          {"validation_num_inference_steps", 2},
          {"crepa_enabled", true},
          {"crepa_block_index", 0},
          {"crepa_encoder", "dinov2_vits14"},
          {"crepa_encoder_image_size", 28},
          {"studio",
           {{"dataset_dir", dir.file("data")},
            {"run_name", "decode"},
            {"architecture", "sit"},
            {"sit_size", "custom"},
            {"patch_size", 2},
            {"depth", 1},
            {"hidden_size", 16},
            {"num_heads", 2},
            {"vae_path", dir.file("vae")},
            {"teacher_input", teacher_input},
            {"encoder_random_init", true},
            {"device", "cpu"},
            {"num_workers", 1}}}};
}

torch::Tensor cropped(const std::string& path) {
  return repa::data::image_to_tensor(repa::data::adm_center_crop(repa::data::read_image(path), kResolution))
      .unsqueeze(0);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("teacher input options: pixels by default; vae_decode needs a VAE; the TAE key follows the regularizer") {
  nlohmann::json config = {{"crepa_enabled", true}, {"studio", {{"vae_path", "some/vae"}}}};
  auto options = TeacherInputOptions::from_config(config);
  CHECK(options.input == TeacherInput::Pixels);
  CHECK_FALSE(options.use_tae);
  CHECK_FALSE(options.drop_vae_encoder);

  config["studio"]["teacher_input"] = "vae_decode";
  config["crepa_use_tae"] = true;
  config["urepa_use_tae"] = false;
  config["crepa_drop_vae_encoder"] = true;
  options = TeacherInputOptions::from_config(config);
  CHECK(options.input == TeacherInput::VaeDecode);
  CHECK(to_string(options.input) == "vae_decode");
  CHECK(options.use_tae);
  CHECK(options.drop_vae_encoder);

  // U-REPA reads its own key.
  config.erase("crepa_enabled");
  config["urepa_enabled"] = true;
  CHECK_FALSE(TeacherInputOptions::from_config(config).use_tae);

  config["studio"]["vae_path"] = "";
  CHECK_THROWS_WITH_AS(TeacherInputOptions::from_config(config), doctest::Contains("studio.teacher_input"),
                       repa::InputError);
  config["studio"]["teacher_input"] = "latents";
  CHECK_THROWS_WITH_AS(TeacherInputOptions::from_config(config), doctest::Contains("\"latents\""), repa::InputError);
}

TEST_CASE("vae_decode caches the teacher's tokens of decode(encode(x)) in a cache of its own") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {3, kResolution, 4});
  write_tiny_vae(dir);
  std::vector<std::pair<std::string, std::string>> messages;
  const Reporter report = [&](const std::string& level, const std::string& m) { messages.emplace_back(level, m); };

  auto config = run_config(dir, "vae_decode");
  config["crepa_use_tae"] = true;
  LatentSpace latent_space(config, torch::kCPU);
  auto teacher_options = repa::encoders::TeacherOptions::from_config(config);
  auto teacher = repa::encoders::make_teacher(teacher_options);
  const auto decoded = prepare_training_data(config, latent_space, teacher.get(), report);
  REQUIRE(decoded.tokens);
  CHECK(decoded.tokens->settings()["teacher_input"] == "vae_decode");
  CHECK(decoded.tokens->settings()["vae"]["vae"] == fs::absolute(dir.file("vae")).string());

  auto pixel_config = run_config(dir, "pixels");
  const auto plain = prepare_training_data(pixel_config, latent_space, teacher.get(), report);
  CHECK(plain.tokens->folder() != decoded.tokens->folder());
  CHECK_FALSE(plain.tokens->settings().contains("teacher_input"));

  // The reference: the same VAE loaded on its own, decode(posterior mean) mapped to [0,1] and clamped, then the
  // teacher's normalised patch tokens.
  auto vae = repa::models::load_autoencoder_kl(dir.file("vae"));
  vae->eval();
  REQUIRE(decoded.folder.images.size() >= 3);
  for (const auto& image : decoded.folder.images) {
    CAPTURE(image.path);
    const auto x = cropped(image.path);
    torch::Tensor expected, from_pixels;
    {
      torch::NoGradGuard no_grad;
      const auto reconstruction = vae->decode(vae->encode(x).mean);
      expected = teacher->encode(((reconstruction + 1.0) * 0.5).clamp(0.0, 1.0)).patch_tokens[0];
      from_pixels = teacher->encode(((x + 1.0) * 0.5).clamp(0.0, 1.0)).patch_tokens[0];
    }
    const auto cached = decoded.tokens->load(image.content_hash).at("patch").to(torch::kFloat32);
    REQUIRE((cached.sizes() == expected.sizes()));
    CHECK(torch::allclose(cached, expected, /*rtol=*/1e-2, /*atol=*/2e-3));
    CHECK((cached - from_pixels).abs().max().item<double>() > 0.05);  // the random VAE changes the image a lot
    const auto cached_pixels = plain.tokens->load(image.content_hash).at("patch").to(torch::kFloat32);
    CHECK(torch::allclose(cached_pixels, from_pixels, 1e-2, 2e-3));
  }
  bool told_tae = false;
  for (const auto& [level, m] : messages)
    if (level == "warning" && m.find("tiny autoencoder") != std::string::npos &&
        m.find("full VAE") != std::string::npos)
      told_tae = true;
  CHECK(told_tae);
}

TEST_CASE("crepa_drop_vae_encoder frees the encoder once the caches are filled; decoding still works") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  write_tiny_vae(dir);
  auto config = run_config(dir, "vae_decode");
  LatentSpace space(config, torch::kCPU);
  const auto pixels = torch::rand({1, 3, kResolution, kResolution}) * 2 - 1;
  const auto latents = space.model_input(space.encode(pixels).at("mean"), space.encode(pixels).at("std"));
  const auto before = space.to_pixels(latents);
  int64_t encoder_tensors = 0;
  for (const auto& item : space.vae()->named_parameters())
    if (item.key().rfind("encoder.", 0) == 0 || item.key().rfind("quant_conv.", 0) == 0) ++encoder_tensors;
  CHECK(encoder_tensors > 0);

  space.drop_encoder();
  CHECK(space.encoder_dropped());
  for (const auto& item : space.vae()->named_parameters()) {
    CAPTURE(item.key());
    CHECK(item.key().rfind("encoder.", 0) != 0);
    CHECK(item.key().rfind("quant_conv.", 0) != 0);
  }
  CHECK(torch::equal(space.to_pixels(latents), before));
  CHECK_THROWS_WITH_AS(space.encode(pixels), doctest::Contains("crepa_drop_vae_encoder"), repa::Error);
  CHECK_THROWS_WITH_AS(space.reconstruct(pixels), doctest::Contains("crepa_drop_vae_encoder"), repa::Error);
}

TEST_CASE("a vae_decode run with crepa_use_tae and crepa_drop_vae_encoder trains, logs both and samples") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, kResolution, 4});
  write_tiny_vae(dir);
  auto config = run_config(dir, "vae_decode");
  config["crepa_use_tae"] = true;
  config["crepa_drop_vae_encoder"] = true;
  {
    Trainer trainer(config);
    CHECK(trainer.run() == 0);
  }
  const auto log = read_text(dir.file("runs/decode/train.log"));
  CHECK(log.find("the full VAE decodes the teacher's input") != std::string::npos);
  CHECK(log.find("crepa_drop_vae_encoder: the VAE's encoder and quant_conv are freed") != std::string::npos);
  CHECK(fs::exists(dir.file("runs/decode/samples/step-000002.png")));
  // The run repeats validate's grid note: 28 px / 14 is 2×2, the SiT sees 16 px / 2 (VAE) / patch 2 = 4×4.
  CHECK(log.find("warning: crepa_encoder_image_size: the teacher's token grid is 2×2") != std::string::npos);
  CHECK(log.find("crepa_encoder_image_size 56 (4 × 14) makes them equal") != std::string::npos);

  // Without the decode the options have nothing to act on (validate reports them as not applicable).
  config["studio"]["teacher_input"] = "pixels";
  config["studio"]["run_name"] = "plain";
  {
    Trainer trainer(config);
    CHECK(trainer.run() == 0);
  }
  const auto plain_log = read_text(dir.file("runs/plain/train.log"));
  CHECK(plain_log.find("the full VAE decodes the teacher's input") == std::string::npos);
  CHECK(plain_log.find("quant_conv are freed") == std::string::npos);

  // vae_decode in pixel space stops at set-up, naming the key.
  config["studio"]["teacher_input"] = "vae_decode";
  config["studio"]["vae_path"] = "";
  config["studio"]["run_name"] = "pixelspace";
  CHECK_THROWS_WITH_AS(Trainer{config}, doctest::Contains("studio.teacher_input"), repa::InputError);
}
