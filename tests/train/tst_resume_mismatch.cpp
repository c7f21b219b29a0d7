// Resuming a checkpoint into a run of another kind: a full-model checkpoint under model_type lora is refused by
// name (exit 2), not with the JSON library's out_of_range.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <string>

#include "core/base/error.h"
#include "core/data/demo_dataset.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using repa::train::Trainer;

TEST_CASE("a full-model checkpoint resumed under model_type lora names what is missing") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  nlohmann::json config = {{"output_dir", dir.file("runs")},
                           {"resolution", 16},
                           {"max_train_steps", 2},
                           {"train_batch_size", 2},
                           {"learning_rate", 1e-3},
                           {"lr_scheduler", "constant"},
                           {"checkpoint_step_interval", 2},
                           {"validation_step_interval", 0},
                           {"validation_num_inference_steps", 2},
                           {"studio",
                            {{"dataset_dir", dir.file("data")},
                             {"run_name", "full"},
                             {"architecture", "sit"},
                             {"sit_size", "custom"},
                             {"patch_size", 4},
                             {"depth", 2},
                             {"hidden_size", 32},
                             {"num_heads", 2},
                             {"device", "cpu"},
                             {"num_workers", 1}}}};
  {
    Trainer trainer(config);
    REQUIRE(trainer.run() == 0);
  }
  config["model_type"] = "lora";
  config["lora_rank"] = 2;
  config["peft_lora_target_modules"] = R"(["attn.qkv", "adaLN_modulation.1"])";
  config["max_train_steps"] = 4;
  config["resume_from_checkpoint"] = "latest";
  const auto message = repa::test::error_of([&] { Trainer trainer(config); });
  CHECK(repa::test::contains(message, "checkpoint-2"));
  CHECK(repa::test::contains(message, "no LoRA state"));
}
