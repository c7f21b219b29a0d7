// LoRA runs (model_type "lora") on the demo SiT and the class-conditional UNet: the base stays frozen and bit for bit
// unchanged, only the adapters and the projector train (optimizer state for them alone), checkpoints hold adapters +
// projector + optimizer state, a stopped run resumes to the uninterrupted run's losses, and the adapter file lands in
// the run folder in the chosen format, readable by init_lora.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/adapters/lora_file.h"
#include "core/base/error.h"
#include "core/data/demo_dataset.h"
#include "core/io/safetensors.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using namespace repa::train;
namespace fs = std::filesystem;

namespace {

nlohmann::json lora_config(const repa::test::ScratchDir& dir, const std::string& name, const std::string& arch) {
  nlohmann::json c = {{"output_dir", dir.file("runs")},
                      {"resolution", 16},
                      {"max_train_steps", 4},
                      {"train_batch_size", 4},
                      {"learning_rate", 1e-2},
                      {"lr_scheduler", "constant"},
                      {"seed", 5},
                      {"max_grad_norm", 1.0},
                      {"checkpoint_step_interval", 2},
                      {"validation_step_interval", 0},
                      {"validation_num_inference_steps", 2},
                      {"resume_from_checkpoint", nullptr},
                      {"model_type", "lora"},
                      {"lora_rank", 4},
                      {"lora_alpha", 8.0},
                      {"lora_dropout", 0.1},
                      {"studio",
                       {{"dataset_dir", dir.file("data")},
                        {"run_name", name},
                        {"architecture", arch},
                        {"sit_size", "custom"},
                        {"patch_size", 4},
                        {"depth", 2},
                        {"hidden_size", 32},
                        {"num_heads", 2},
                        {"encoder_random_init", true},
                        {"device", "cpu"},
                        {"num_workers", 1}}}};
  if (arch == "sit") {
    // A from-scratch SiT gates every block by adaLN-Zero's zero output: with the base frozen, attention adapters
    // only receive gradient once an adapter on the modulation opens the gates.
    c["peft_lora_target_modules"] = R"(["attn.qkv", "attn.proj", "adaLN_modulation.1"])";
    c["crepa_enabled"] = true;
    c["crepa_block_index"] = 0;
    c["crepa_encoder"] = "dinov2_vits14";
    c["crepa_encoder_image_size"] = 28;
  } else {
    c["urepa_enabled"] = true;
    c["urepa_model"] = "dinov2_vits14";
    c["urepa_encoder_image_size"] = 28;
  }
  return c;
}

std::map<int64_t, double> losses_of(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto m = nlohmann::json::parse(line);
    out[m["step"].get<int64_t>()] = m["loss"].get<double>();
  }
  return out;
}

std::map<std::string, torch::Tensor> base_copy(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

int64_t numel_in(const std::string& path) {
  const auto file = repa::io::SafetensorsFile::open(path);
  int64_t n = 0;
  for (const auto& name : file.names()) n += file.tensor(name).numel();
  return n;
}

}  // namespace

TEST_CASE("LoRA runs: frozen base, adapters + projector train, checkpoints without the base, exact resume") {
  torch::set_num_threads(1);
  for (const std::string arch : {"sit", "unet2d"}) {
    CAPTURE(arch);
    repa::test::ScratchDir dir;
    repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
    auto config = lora_config(dir, "whole", arch);
    if (arch == "unet2d") config["lora_format"] = "comfyui";
    // The EMA follows the adapters (a fast decay so that it visibly differs from them).
    config["use_ema"] = true;
    config["ema_decay"] = 0.5;
    int64_t trainable = 0;
    {
      Trainer trainer(config);
      REQUIRE(trainer.lora() != nullptr);
      auto& base = trainer.backbone().module();
      const auto before = base_copy(base);
      for (const auto& p : base.parameters()) CHECK(!p.requires_grad());
      int64_t projector = 0;
      for (const auto& p : trainer.alignment().parameters()) projector += p.numel();
      trainable = trainer.trainable_parameter_count();
      CHECK(trainable == trainer.lora()->lora().parameter_count() + projector);
      CHECK(trainer.lora()->lora().parameter_count() < trainer.lora()->base_parameters() / 4);
      CHECK(trainer.run() == 0);
      // The base is exactly what it was; the adapters moved away from B = 0.
      for (const auto& item : base.named_parameters()) CHECK(torch::equal(item.value(), before.at(item.key())));
      double b_norm = 0;
      for (const auto& item : trainer.lora()->lora().named_parameters())
        if (item.first.find("lora_B") != std::string::npos) b_norm += item.second.abs().sum().item<double>();
      CHECK(b_norm > 0);
    }
    const auto whole = dir.file("runs/whole");
    const auto checkpoint = whole + "/checkpoints/checkpoint-2";
    CHECK(fs::exists(checkpoint + "/lora.safetensors"));
    CHECK(!fs::exists(checkpoint + "/model.safetensors"));
    CHECK(fs::exists(checkpoint + "/align.safetensors"));
    CHECK(numel_in(checkpoint + "/ema.safetensors") == numel_in(checkpoint + "/lora.safetensors"));  // adapters only
    REQUIRE(fs::exists(whole + "/ema/pytorch_lora_weights.safetensors"));
    CHECK(repa::test::read_bytes(whole + "/ema/pytorch_lora_weights.safetensors") !=
          repa::test::read_bytes(whole + "/pytorch_lora_weights.safetensors"));
    // AdamW keeps two moments per trainable value, nothing for the frozen base.
    CHECK(numel_in(checkpoint + "/optimizer.safetensors") == 2 * trainable);
    MESSAGE(arch << ": " << trainable << " trainable values, optimizer state " << 2 * trainable * 4 << " bytes");

    // The adapter file, in the run folder, in the chosen format, with the projector beside it.
    const auto lora_file = whole + "/pytorch_lora_weights.safetensors";
    REQUIRE(fs::exists(lora_file));
    const auto file = repa::io::SafetensorsFile::open(lora_file);
    if (arch == "sit") {
      CHECK(file.contains("transformer.blocks.0.attn.qkv.lora_A.weight"));
      CHECK(file.contains("transformer.blocks.1.attn.proj.lora_B.weight"));
      CHECK(file.contains("transformer.blocks.1.adaLN_modulation.1.lora_B.weight"));
      CHECK(file.contains("transformer.crepa_projector.0.weight"));
      CHECK(nlohmann::json::parse(*file.meta("lora_adapter_metadata"))["transformer.lora_alpha"] == 8.0);
    } else {
      bool kohya = false, projector = false;
      for (const auto& name : file.names()) {
        kohya |= name.rfind("lora_unet_", 0) == 0 && name.find("_to_q.lora_down.weight") != std::string::npos;
        projector |= name.rfind("unet.urepa_projector.", 0) == 0;
      }
      CHECK(kohya);
      CHECK(projector);
    }
    CHECK(file.meta("global_step") == std::optional<std::string>("4"));

    // Stopped after checkpoint 2, resumed to 4: the same losses, step for step.
    const auto losses = losses_of(whole);
    REQUIRE(losses.size() == 4);
    config["studio"]["run_name"] = "parts";
    config["max_train_steps"] = 2;
    { Trainer(config).run(); }
    config["max_train_steps"] = 4;
    config["resume_from_checkpoint"] = "latest";
    {
      Trainer trainer(config);
      CHECK(trainer.step() == 2);
      CHECK(trainer.run() == 0);
    }
    const auto resumed = losses_of(dir.file("runs/parts"));
    REQUIRE(resumed.size() == 4);
    for (int64_t step = 1; step <= 4; ++step) CHECK(resumed.at(step) == losses.at(step));
    CHECK(repa::test::read_bytes(dir.file("runs/parts/pytorch_lora_weights.safetensors")) ==
          repa::test::read_bytes(lora_file));

    // init_lora starts a new run from that file: its adapters hold the file's values before the first step.
    config["studio"]["run_name"] = "again";
    config["resume_from_checkpoint"] = nullptr;
    config["init_lora"] = lora_file;
    Trainer again(config);
    const auto read =
        repa::adapters::read_lora_file(lora_file, repa::adapters::family_lora(arch), again.backbone().module());
    for (const auto& path : again.lora()->lora().adapted_modules()) {
      CHECK(torch::equal(again.lora()->lora().layer(path)->lora_B, read.modules.at(path).lora_B));
    }
    // ... and the projector saved beside them.
    const std::string projector = arch == "sit" ? "crepa_projector." : "urepa_projector.";
    int compared = 0;
    for (const auto& item : again.alignment().projectors()->named_parameters()) {
      for (const auto& extra : read.extra) {
        if (extra.first == projector + simpletuner_projector_name(item.key())) {
          CHECK(torch::equal(item.value(), extra.second));
          ++compared;
        }
      }
    }
    CHECK(compared == static_cast<int>(again.alignment().projectors()->named_parameters().size()));
  }
}

TEST_CASE("LoRA run errors name the option") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  auto config = lora_config(dir, "bad", "sit");
  config["peft_lora_target_modules"] = R"(["to_q"])";
  try {
    Trainer trainer(config);
    FAIL("targets that match nothing must stop the run");
  } catch (const repa::InputError& e) {
    CHECK(std::string(e.what()).find("blocks.0.attn.qkv") != std::string::npos);
  }
  config.erase("peft_lora_target_modules");
  config["lora_format"] = "kohya";
  CHECK_THROWS_WITH_AS(Trainer{config}, doctest::Contains("lora_format"), repa::InputError);
}
