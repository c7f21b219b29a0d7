// A stop signal that lands right after an interval checkpoint: the run stops at that step without writing
// the same checkpoint again, and ends finished/stopped. SIGHUP (a closed terminal) is such a signal. The
// signal flag is process-wide and stays set, so this executable holds this one test.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>

#include "core/data/demo_dataset.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using namespace repa::train;
namespace fs = std::filesystem;

TEST_CASE("SIGHUP right after the interval checkpoint stops there without rewriting that checkpoint") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {4, 16, 1});
  const nlohmann::json config = {{"output_dir", dir.file("runs")},
                                 {"resolution", 16},
                                 {"max_train_steps", 10},
                                 {"train_batch_size", 2},
                                 {"learning_rate", 1e-3},
                                 {"lr_scheduler", "constant"},
                                 {"seed", 3},
                                 {"checkpoint_step_interval", 2},
                                 {"validation_step_interval", 0},
                                 {"crepa_enabled", false},
                                 {"studio",
                                  {{"dataset_dir", dir.file("data")},
                                   {"run_name", "hup"},
                                   {"architecture", "sit"},
                                   {"sit_size", "custom"},
                                   {"patch_size", 4},
                                   {"depth", 1},
                                   {"hidden_size", 16},
                                   {"num_heads", 2},
                                   {"device", "cpu"},
                                   {"num_workers", 1}}}};
  TrainerOptions options;
  options.handle_signals = true;
  Trainer trainer(config, options);
  std::vector<int64_t> checkpoint_steps;
  trainer.events().add_listener([&](const nlohmann::json& e) {
    if (e.value("type", "") != "checkpoint") return;
    checkpoint_steps.push_back(e.value("step", int64_t{-1}));
    if (checkpoint_steps.size() == 1) std::raise(SIGHUP);  // lands between the checkpoint and the next step
  });
  CHECK(trainer.run() == 0);
  CHECK(trainer.step() == 2);
  CHECK(checkpoint_steps == std::vector<int64_t>{2});  // not {2, 2}: the signal's checkpoint is the saved one
  const std::string run_dir = dir.file("runs/hup");
  CHECK(fs::exists(run_dir + "/checkpoints/checkpoint-2/trainer_state.json"));
  const auto status = trainer.run_directory().status();
  CHECK(status["state"] == "finished");
  CHECK(status["reason"] == "stopped");
}
