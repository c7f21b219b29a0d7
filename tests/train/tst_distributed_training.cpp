// Data-parallel training end to end on CPU (Gloo over 127.0.0.1, one thread per process, tiny models): two
// ranks with batch B give the losses of one process with batch 2B and the same seed, for SiT + REPA and UNet +
// U-REPA; both ranks hold identical weights after the run; a resume on two ranks repeats the uninterrupted run.
#include <doctest/doctest.h>

#include <regex>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "core/data/demo_dataset.h"
#include "core/train/distributed.h"
#include "core/train/tiny_pipeline.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using namespace repa::train;
namespace fs = std::filesystem;

namespace {

nlohmann::json tiny_config(const repa::test::ScratchDir& dir, const std::string& name, int batch) {
  return {{"output_dir", dir.file("runs")},
          {"resolution", 16},
          {"max_train_steps", 4},
          {"train_batch_size", batch},
          {"learning_rate", 1e-3},
          {"lr_scheduler", "constant"},
          {"seed", 3},
          {"use_ema", true},
          {"ema_decay", 0.9},
          {"max_grad_norm", 1.0},
          {"checkpoint_step_interval", 2},
          {"checkpoints_total_limit", 5},
          {"validation_step_interval", 0},
          {"crepa_enabled", true},
          {"crepa_block_index", 0},
          {"crepa_lambda", 0.5},
          {"crepa_encoder", "dinov2_vits14"},
          {"crepa_encoder_image_size", 28},
          {"crepa_similarity_ema_decay", 0.5},
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
            {"random_flip", true},
            {"device", "cpu"},
            {"num_workers", 1},
            {"distributed_timeout", 30}}}};
}

nlohmann::json unet_config(const repa::test::ScratchDir& dir, const std::string& name, int batch) {
  auto config = tiny_config(dir, name, batch);
  config.erase("crepa_enabled");
  config["urepa_enabled"] = true;
  config["urepa_model"] = "dinov2_vits14";
  config["urepa_encoder_image_size"] = 28;
  config["studio"]["architecture"] = "unet2d";
  return config;
}

// Trains `config` as `world` forked ranks (world 1: an ordinary run); each rank saves its trainable
// tensors to <dir>/weights-<run>-<rank>.pt. Returns the exit codes.
std::vector<int> train_ranks(const repa::test::ScratchDir& dir, const nlohmann::json& config, int world) {
  const int port = free_local_port();
  const std::string run = config["studio"]["run_name"];
  std::vector<pid_t> pids;
  std::fflush(nullptr);
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(name);
        if (world > 1) {
          ::setenv("RANK", std::to_string(r).c_str(), 1);
          ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
          ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
          ::setenv("MASTER_ADDR", "127.0.0.1", 1);
          ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
        }
        torch::set_num_threads(1);
        Trainer trainer(config);
        code = trainer.run();
        std::vector<torch::Tensor> weights = trainer.backbone().module().parameters();
        for (const auto& p : trainer.alignment().parameters()) weights.push_back(p);
        for (auto& w : weights) w = w.detach().clone();
        torch::save(weights, dir.file("weights-" + run + "-" + std::to_string(r) + ".pt"));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        code = 97;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<int> codes;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return codes;
}

std::map<int64_t, nlohmann::json> metrics_of(const std::string& run_dir) {
  std::map<int64_t, nlohmann::json> out;  // the last line for each step counts (resumed runs repeat steps)
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto m = nlohmann::json::parse(line);
    out[m["step"].get<int64_t>()] = m;
  }
  return out;
}

std::vector<torch::Tensor> weights_of(const repa::test::ScratchDir& dir, const std::string& run, int rank) {
  std::vector<torch::Tensor> weights;
  torch::load(weights, dir.file("weights-" + run + "-" + std::to_string(rank) + ".pt"));
  return weights;
}

bool close(double a, double b) {
  return std::abs(a - b) <= 1e-5 * std::max(1.0, std::abs(b));
}

// One process with batch 4 against two ranks with batch 2: the same losses and scalars at every step, the
// same final weights, and identical weights on both ranks.
void check_equivalence(const repa::test::ScratchDir& dir,
                       const std::function<nlohmann::json(const std::string&, int)>& make,
                       const std::vector<std::string>& scalars) {
  REQUIRE(train_ranks(dir, make("one", 4), 1) == std::vector<int>{0});
  REQUIRE(train_ranks(dir, make("two", 2), 2) == std::vector<int>{0, 0});
  const auto one = metrics_of(dir.file("runs/one")), two = metrics_of(dir.file("runs/two"));
  REQUIRE(one.size() == 4);
  REQUIRE(two.size() == 4);
  for (int64_t step = 1; step <= 4; ++step) {
    CAPTURE(step);
    for (const auto& key : scalars) {
      CAPTURE(key);
      REQUIRE(one.at(step).contains(key));
      CHECK(close(two.at(step)[key].get<double>(), one.at(step)[key].get<double>()));
    }
  }
  // The losses moved: equality above is not that of an idle run.
  CHECK(one.at(1)["loss"].get<double>() != one.at(4)["loss"].get<double>());
  const auto rank0 = weights_of(dir, "two", 0), rank1 = weights_of(dir, "two", 1), single = weights_of(dir, "one", 0);
  REQUIRE(rank0.size() == rank1.size());
  REQUIRE(rank0.size() == single.size());
  for (std::size_t k = 0; k < rank0.size(); ++k) {
    CAPTURE(k);
    CHECK(torch::equal(rank0[k], rank1[k]));  // bit for bit: the same averaged gradients everywhere
    const double difference = (rank0[k] - single[k]).abs().max().item<double>();
    CAPTURE(difference);
    CHECK(torch::allclose(rank0[k], single[k], 1e-4, 1e-5));  // float noise of a different reduction order
  }
  // Rank 0 alone wrote the run folder; rank 1 kept only its own log under ranks/.
  CHECK(fs::exists(dir.file("runs/two/checkpoints/checkpoint-4/trainer_state.json")));
  CHECK_FALSE(fs::exists(dir.file("runs/two/ranks/rank-1/checkpoints/checkpoint-4")));
  CHECK(repa::test::contains(repa::test::read_bytes(dir.file("runs/two/ranks/rank-1/train.log")),
                             "data parallel: rank 1 of 2 (gloo)"));
}

}  // namespace

TEST_CASE("SiT + REPA: two ranks with batch 2 train as one process with batch 4") {
  repa::test::ScratchDir dir("repa-dp-sit");
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  check_equivalence(
      dir, [&](const std::string& name, int batch) { return tiny_config(dir, name, batch); },
      {"loss", "diffusion_loss", "grad_norm", "crepa_loss", "crepa_alignment_score", "crepa_alignment_score_ema"});
}

TEST_CASE("UNet + U-REPA: two ranks with batch 2 train as one process with batch 4") {
  repa::test::ScratchDir dir("repa-dp-unet");
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  check_equivalence(dir, [&](const std::string& name, int batch) { return unet_config(dir, name, batch); },
                    {"loss", "diffusion_loss", "grad_norm", "urepa_loss", "urepa_similarity", "urepa_manifold_loss"});
}

TEST_CASE("two ranks resume from the latest checkpoint and repeat the uninterrupted run's losses") {
  repa::test::ScratchDir dir("repa-dp-resume");
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  REQUIRE(train_ranks(dir, tiny_config(dir, "whole", 2), 2) == std::vector<int>{0, 0});
  auto first = tiny_config(dir, "parts", 2);
  first["max_train_steps"] = 2;
  REQUIRE(train_ranks(dir, first, 2) == std::vector<int>{0, 0});
  auto rest = tiny_config(dir, "parts", 2);
  rest["resume_from_checkpoint"] = "latest";
  REQUIRE(train_ranks(dir, rest, 2) == std::vector<int>{0, 0});
  const auto whole = metrics_of(dir.file("runs/whole")), parts = metrics_of(dir.file("runs/parts"));
  REQUIRE(parts.size() == 4);
  for (int64_t step = 1; step <= 4; ++step) {
    CAPTURE(step);
    CHECK(parts.at(step)["loss"].get<double>() == whole.at(step)["loss"].get<double>());
  }
  const auto a = weights_of(dir, "parts", 0), b = weights_of(dir, "parts", 1), w = weights_of(dir, "whole", 0);
  for (std::size_t k = 0; k < a.size(); ++k) {
    CHECK(torch::equal(a[k], b[k]));
    CHECK(torch::equal(a[k], w[k]));
  }
}

TEST_CASE("two ranks fill the caches once, each its share, and both train on all of it") {
  repa::test::ScratchDir dir("repa-dp-share");
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});  // 12 images
  REQUIRE(train_ranks(dir, tiny_config(dir, "share", 2), 2) == std::vector<int>{0, 0});
  const auto rank0 = repa::test::read_bytes(dir.file("runs/share/train.log"));
  const auto rank1 = repa::test::read_bytes(dir.file("runs/share/ranks/rank-1/train.log"));
  INFO(rank0);
  INFO(rank1);
  // Images 0, 2, 4 ... on rank 0 and 1, 3, 5 ... on rank 1: 6 teacher-token entries each, none twice.
  CHECK(repa::test::contains(rank0, "0 reused, 6 computed"));
  CHECK(repa::test::contains(rank1, "0 reused, 6 computed"));
  // A second run finds all 12 on either rank.
  REQUIRE(train_ranks(dir, tiny_config(dir, "again", 2), 2) == std::vector<int>{0, 0});
  CHECK(repa::test::contains(repa::test::read_bytes(dir.file("runs/again/ranks/rank-1/train.log")),
                             "6 reused, 0 computed"));
}

TEST_CASE("an SD 1.x family run on two ranks encodes each caption once across the ranks") {
  repa::test::ScratchDir dir("repa-dp-text");
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});  // 12 images, 12 distinct captions
  write_tiny_sd_pipeline(dir.file("sd"), "sd1x", repa::test::fixture_path("tokenizers/clip"), 2);
  auto config = tiny_config(dir, "text", 2);
  config.erase("crepa_enabled");
  config["model_family"] = "sd1x";
  config["pretrained_model_name_or_path"] = dir.file("sd");
  config["caption_strategy"] = "textfile";
  config["validation_prompt"] = "a red disc";
  config["studio"].erase("architecture");
  REQUIRE(train_ranks(dir, config, 2) == std::vector<int>{0, 0});
  const auto rank0 = repa::test::read_bytes(dir.file("runs/text/train.log"));
  const auto rank1 = repa::test::read_bytes(dir.file("runs/text/ranks/rank-1/train.log"));
  INFO(rank0);
  INFO(rank1);
  // 15 prompts (the empty one, 12 captions, the validation and negative prompts): rank 0 takes 8 (the empty
  // one and 7 of its share), rank 1 its 7 and the empty one, which both need at once.
  // Whichever rank writes the empty caption first, the other may find it already cached.
  const auto encoded = [](const std::string& log) {
    std::smatch m;
    REQUIRE(std::regex_search(log, m, std::regex("8 prompts, ([01]) reused, ([78]) encoded")));
    CHECK(std::stoi(m[1]) + std::stoi(m[2]) == 8);
    return std::stoi(m[2]);
  };
  const int total = encoded(rank0) + encoded(rank1);
  CHECK(total >= 15);
  CHECK(total <= 16);
  // The family run's latents are cached per aspect bucket crop, split the same way: 6 of the 12 images each.
  CHECK(repa::test::contains(rank0, "aspect buckets: 1.0 (16x16): 12"));
  CHECK(repa::test::contains(rank0, "0 reused, 6 computed"));
  CHECK(repa::test::contains(rank1, "0 reused, 6 computed"));
}
