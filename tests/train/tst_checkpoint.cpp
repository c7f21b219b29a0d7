// Checkpoints: atomic folders, keep-last-K, resume resolution, AdamW moments and RNG state round trips.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/train/checkpoint.h"
#include "core/train/ema.h"
#include "tests/test_support.h"

using namespace repa::train;
namespace fs = std::filesystem;

namespace {
CheckpointParts parts_for(int64_t step) {
  CheckpointParts parts;
  parts.tensors["model"] = {{"w", torch::full({2}, static_cast<float>(step))}};
  parts.state = {
      {"step", step}, {"config", nlohmann::json::object()}, {"data_position", {{"epoch", 0}, {"offset", 0}}}};
  return parts;
}
}  // namespace

TEST_CASE("checkpoints are complete folders; the oldest beyond the limit are removed; latest is the highest step") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  fs::create_directories(root);
  for (int64_t step : {5, 10, 15, 20}) write_checkpoint(root, step, parts_for(step), 2);
  // A half-written folder (as a kill leaves it) and a stray folder are never taken for checkpoints.
  fs::create_directories(root + "/.tmp-checkpoint-25-999");
  fs::create_directories(root + "/checkpoint-30");
  const auto all = list_checkpoints(root);
  REQUIRE(all.size() == 2);
  CHECK(fs::path(all[0]).filename() == "checkpoint-15");
  CHECK(fs::path(*latest_checkpoint(root)).filename() == "checkpoint-20");
  CHECK(read_checkpoint_state(all[1])["step"] == 20);
  CHECK(open_checkpoint_part(all[1], "model").tensor("w")[0].item<float>() == 20.0f);
  // Rewriting a step replaces it.
  auto again = parts_for(20);
  again.state["note"] = "second";
  write_checkpoint(root, 20, again, 2);
  CHECK(read_checkpoint_state(all[1])["note"] == "second");

  CHECK(fs::path(*resolve_resume("latest", root)).filename() == "checkpoint-20");
  CHECK(fs::path(*resolve_resume(all[0], root)).filename() == "checkpoint-15");
  CHECK_FALSE(resolve_resume("latest", dir.file("empty")).has_value());
  CHECK_THROWS_WITH_AS(resolve_resume(dir.file("nowhere"), root), doctest::Contains("nowhere"), repa::InputError);
}

TEST_CASE("AdamW's moments and step counts survive a checkpoint: the next update is identical") {
  repa::test::ScratchDir dir;
  torch::manual_seed(0);
  auto make = [] {
    auto layer = torch::nn::Linear(3, 2);
    return layer;
  };
  auto a = make();
  auto b = make();
  b->weight.data().copy_(a->weight.data());
  b->bias.data().copy_(a->bias.data());
  torch::optim::AdamW opt_a(a->parameters(), torch::optim::AdamWOptions(0.1).weight_decay(0.01));
  torch::optim::AdamW opt_b(b->parameters(), torch::optim::AdamWOptions(0.1).weight_decay(0.01));
  const auto x = torch::randn({4, 3});
  for (int i = 0; i < 3; ++i) {
    opt_a.zero_grad();
    a->forward(x).pow(2).sum().backward();
    opt_a.step();
  }
  nlohmann::json steps;
  repa::io::save_safetensors(dir.file("opt.safetensors"), adamw_state(opt_a, steps));
  CHECK(steps[0] == 3);
  // b gets a's weights and optimizer state, then both take one more step.
  repa::io::save_safetensors(dir.file("model.safetensors"), module_state(*a));
  load_module_state(*b, repa::io::SafetensorsFile::open(dir.file("model.safetensors")));
  load_adamw_state(opt_b, repa::io::SafetensorsFile::open(dir.file("opt.safetensors")), steps);
  for (auto* pair : {&opt_a, &opt_b}) pair->zero_grad();
  a->forward(x).pow(2).sum().backward();
  b->forward(x).pow(2).sum().backward();
  opt_a.step();
  opt_b.step();
  CHECK(torch::equal(a->weight, b->weight));
  CHECK(torch::equal(a->bias, b->bias));
}

TEST_CASE("the CPU generator state restores the same random stream; a mis-shaped tensor is named") {
  repa::test::ScratchDir dir;
  torch::manual_seed(42);
  torch::randn({3});
  repa::io::save_safetensors(dir.file("rng.safetensors"), rng_state());
  const auto expected = torch::randn({5});
  torch::manual_seed(7);
  load_rng_state(repa::io::SafetensorsFile::open(dir.file("rng.safetensors")));
  CHECK(torch::equal(torch::randn({5}), expected));

  auto small = torch::nn::Linear(2, 2);
  auto big = torch::nn::Linear(3, 2);
  repa::io::save_safetensors(dir.file("small.safetensors"), module_state(*small));
  CHECK_THROWS_WITH_AS(load_module_state(*big, repa::io::SafetensorsFile::open(dir.file("small.safetensors"))),
                       doctest::Contains("'weight'"), repa::InputError);
}

TEST_CASE("the EMA moves toward the weights by (1 - decay) and swaps in and out") {
  auto layer = torch::nn::Linear(1, 1);
  torch::NoGradGuard no_grad;
  layer->weight.fill_(0.0);
  ExponentialMovingAverage ema(*layer, 0.9);
  layer->weight.fill_(1.0);
  ema.update(*layer);
  ema.update(*layer);
  CHECK(ema.named_tensors()[0].second.item<float>() == doctest::Approx(0.19));  // 0.1 + 0.9·0.1
  ema.swap_into(*layer);
  CHECK(layer->weight.item<float>() == doctest::Approx(0.19));
  ema.swap_into(*layer);
  CHECK(layer->weight.item<float>() == doctest::Approx(1.0));
}
