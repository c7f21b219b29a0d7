// Where the alignment loss's gradient goes in a real run's objects: into the backbone up to the tapped block
// (SiT) or the mid block (UNet), into the projector, and nowhere after the tap; the frozen teacher never gets
// one, neither from cached tokens nor when it runs inside the step.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "core/data/demo_dataset.h"
#include "core/encoders/teacher.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using namespace repa::train;

namespace {

nlohmann::json sit_config(const repa::test::ScratchDir& dir, int64_t tap_block) {
  return {{"output_dir", dir.file("runs")},
          {"resolution", 16},
          {"max_train_steps", 10},
          {"train_batch_size", 4},
          {"learning_rate", 1e-2},
          {"lr_scheduler", "constant"},
          {"seed", 5},
          {"crepa_enabled", true},
          {"crepa_block_index", tap_block},
          {"crepa_lambda", 0.5},
          {"crepa_encoder", "dinov2_vits14"},
          {"crepa_encoder_image_size", 28},
          {"studio",
           {{"dataset_dir", dir.file("data")},
            {"run_name", "flow"},
            {"architecture", "sit"},
            {"sit_size", "custom"},
            {"patch_size", 4},
            {"depth", 4},
            {"hidden_size", 32},
            {"num_heads", 2},
            {"encoder_random_init", true},
            {"device", "cpu"},
            {"num_workers", 1}}}};
}

void clear_gradients(torch::nn::Module& module) {
  for (auto& p : module.parameters()) p.mutable_grad() = torch::Tensor();
}

bool has_gradient(const torch::Tensor& p) {
  return p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
}

// The block index of a SiT parameter name ("blocks.3.attn.qkv.weight" → 3), -1 for other names.
int64_t block_of(const std::string& name) {
  if (name.rfind("blocks.", 0) != 0) return -1;
  return std::stoll(name.substr(7, name.find('.', 7) - 7));
}

std::string top_level(const std::string& name) {
  return name.substr(0, name.find('.'));
}

void check_teacher_untouched(Trainer& trainer) {
  auto* teacher = dynamic_cast<repa::encoders::Dinov2Teacher*>(trainer.teacher());
  REQUIRE(teacher != nullptr);
  int64_t count = 0;
  for (const auto& p : teacher->model()->parameters()) {
    CHECK_FALSE(p.requires_grad());
    CHECK_FALSE(p.grad().defined());
    ++count;
  }
  CHECK(count > 10);
}

}  // namespace

TEST_CASE("REPA's gradient reaches the SiT up to the tapped block and the projector, not after it, not the teacher") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {4, 16, 1});
  const int64_t tap = 1;
  Trainer trainer(sit_config(dir, tap));
  // adaLN-Zero starts every block's gates at 0, which would hide the gradient of the gated layers: two steps
  // move them off zero.
  trainer.train_step();
  trainer.train_step();
  auto& model = trainer.backbone().module();

  for (bool teacher_in_step : {false, true}) {
    CAPTURE(teacher_in_step);
    trainer.set_teacher_every_step(teacher_in_step);
    clear_gradients(model);
    for (auto& p : trainer.alignment().parameters()) p.mutable_grad() = torch::Tensor();
    auto losses = trainer.next_micro_batch_losses();
    REQUIRE(losses.alignment.applied);
    REQUIRE(losses.alignment.loss.requires_grad());
    losses.alignment.loss.backward();

    std::set<std::string> reached, untouched;
    for (const auto& item : model.named_parameters()) {
      if (!item.value().requires_grad()) continue;
      const auto& name = item.key();
      const int64_t block = block_of(name);
      const bool before_tap = block >= 0 ? block <= tap : top_level(name) != "final_layer";
      CAPTURE(name);
      if (before_tap) {
        CHECK(has_gradient(item.value()));
        reached.insert(block >= 0 ? "blocks." + std::to_string(block) : top_level(name));
      } else {
        CHECK_FALSE(has_gradient(item.value()));
        untouched.insert(block >= 0 ? "blocks." + std::to_string(block) : top_level(name));
      }
    }
    CHECK((reached == std::set<std::string>{"blocks.0", "blocks.1", "t_embedder", "x_embedder", "y_embedder"}));
    CHECK((untouched == std::set<std::string>{"blocks.2", "blocks.3", "final_layer"}));
    for (const auto& p : trainer.alignment().parameters()) CHECK(has_gradient(p));
    check_teacher_untouched(trainer);
  }

  // The diffusion loss, by contrast, reaches every block and the final layer: the graph after the tap exists.
  trainer.set_teacher_every_step(false);
  clear_gradients(model);
  trainer.next_micro_batch_losses().diffusion.backward();
  for (const auto& item : model.named_parameters())
    if (item.key().rfind("blocks.3.", 0) == 0 || item.key().rfind("final_layer.", 0) == 0) {
      CAPTURE(item.key());
      CHECK(has_gradient(item.value()));
    }
}

TEST_CASE("U-REPA's gradient reaches the UNet's down path and mid block, not the up path, never the teacher") {
  torch::set_num_threads(1);
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  auto config = sit_config(dir, 0);
  config.erase("crepa_enabled");
  config.erase("crepa_block_index");
  config["urepa_enabled"] = true;
  config["urepa_model"] = "dinov2_vits14";
  config["urepa_encoder_image_size"] = 28;
  config["studio"]["architecture"] = "unet2d";
  Trainer trainer(config);
  auto& model = trainer.backbone().module();
  clear_gradients(model);
  auto losses = trainer.next_micro_batch_losses();
  REQUIRE(losses.alignment.applied);
  losses.alignment.loss.backward();
  const std::set<std::string> before = {"conv_in", "time_embedding", "class_embedding", "down_blocks", "mid_block"};
  const std::set<std::string> after = {"up_blocks", "conv_norm_out", "conv_out"};
  std::set<std::string> seen;
  for (const auto& item : model.named_parameters()) {
    const auto part = top_level(item.key());
    CAPTURE(item.key());
    seen.insert(part);
    if (before.count(part))
      CHECK(has_gradient(item.value()));
    else
      CHECK((after.count(part) == 1 && !has_gradient(item.value())));
  }
  for (const auto& part : after) CHECK(seen.count(part) == 1);
  for (const auto& p : trainer.alignment().parameters()) CHECK(has_gradient(p));
  check_teacher_untouched(trainer);
}
