// The memory a training step needs, estimated from the config before anything is allocated: it grows with
// the batch, refuses what cannot fit with the numbers named, and passes the demo.
#include <doctest/doctest.h>

#include "core/base/error.h"
#include "core/base/memory.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/train/memory_estimate.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::train;
using repa::test::contains;
using repa::test::error_of;

namespace {

json demo(const std::vector<std::string>& overrides = {}) {
  return repa::config::resolve_json(json::object(), "demo", overrides, repa::config::Purpose::Run);
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

TEST_CASE("the estimate is linear in the batch for activations and images, constant for weights") {
  const auto one = estimate_training_memory(demo({"train_batch_size=1", "use_ema=false"}));
  const auto eight = estimate_training_memory(demo({"train_batch_size=8", "use_ema=false"}));
  CHECK(one.parameters > 0);
  CHECK(eight.weights_bytes == one.weights_bytes);
  CHECK(eight.activations_bytes == doctest::Approx(8 * one.activations_bytes));
  CHECK(eight.data_bytes == doctest::Approx(8 * one.data_bytes));
  // fp32 weights + gradients + two AdamW moments; an EMA adds one copy.
  CHECK(one.weights_bytes == doctest::Approx(16 * one.parameters));
  const auto ema = estimate_training_memory(demo({"train_batch_size=1", "use_ema=true"}));
  CHECK(ema.weights_bytes == doctest::Approx(20 * one.parameters));
}

TEST_CASE("a SiT-B/2 at 256 px in latent space: parameters and per-sample activations of the right size") {
  auto config = demo(
      {"studio.architecture=sit", "studio.sit_size=B", "studio.patch_size=2", "resolution=256", "train_batch_size=1"});
  config["studio"]["vae_path"] = "/some/vae";  // only its presence matters: a /8 latent of 4 channels
  const auto estimate = estimate_training_memory(config);
  // SiT-B has 130 M parameters (REPA's table); the blocks' 12 × 18 h² are 127 M of them.
  CHECK(estimate.parameters > 120e6);
  CHECK(estimate.parameters < 140e6);
  // 256 tokens × 768 wide × 12 blocks: tens of MB per sample, far below a GB.
  CHECK(estimate.activations_bytes > 20e6);
  CHECK(estimate.activations_bytes < 1e9);
}

TEST_CASE("a batch of 100 million is refused naming the estimate, the machine and the override") {
  const auto estimate = estimate_training_memory(demo({"train_batch_size=100000000"}));
  CHECK(estimate.total() > 1e14);  // 100 M samples of 32 px: about 1.3 MB each
  const auto message = error_of([&] { check_training_memory(estimate, 16 * kGiB, 32 * kGiB); });
  CHECK(contains(message, "train_batch_size 100000000"));
  CHECK(contains(message, "16.0 GiB available"));
  CHECK(contains(message, "32.0 GiB in all"));
  CHECK(contains(message, "studio.skip_memory_check"));
  CHECK(contains(message, "TiB"));
}

TEST_CASE("the demo preset passes on this machine, and 1 GiB is plenty for it") {
  const auto estimate = estimate_training_memory(demo());
  CHECK(estimate.total() < 1 * kGiB);
  CHECK(error_of([&] { check_training_memory(estimate, 1 * kGiB, 1 * kGiB); }).empty());
  CHECK(error_of([&] {
          check_training_memory(estimate, repa::available_memory_bytes(), repa::total_memory_bytes());
        }).empty());
  CHECK(repa::available_memory_bytes() > 0);
  CHECK(repa::total_memory_bytes() >= repa::available_memory_bytes());
}

TEST_CASE("on a GPU the message names the GPU; without a CUDA runtime its memory is unknown, not zero") {
  const auto estimate = estimate_training_memory(demo({"train_batch_size=100000000"}));
  CHECK(contains(error_of([&] { check_training_memory(estimate, 139 * kGiB, 141 * kGiB, "the GPU"); }),
                 "but the GPU has 139.0 GiB available (141.0 GiB in all)"));
  double free_bytes = -1, total_bytes = -1;
  if (!repa::cuda_memory_bytes(&free_bytes, &total_bytes)) {
    CHECK(free_bytes == -1);  // untouched
    CHECK(total_bytes == -1);
  } else {
    CHECK(free_bytes > 0);
    CHECK(total_bytes >= free_bytes);
  }
}

TEST_CASE("a model family's backbone gets no estimate and is never refused by one") {
  const auto flux = repa::config::resolve_json(json::object(), "flux", {}, repa::config::Purpose::Export);
  const auto estimate = estimate_training_memory(flux);
  CHECK_FALSE(estimate.applies);
  CHECK(error_of([&] { check_training_memory(estimate, 1 * kGiB, 1 * kGiB); }).empty());
}

TEST_CASE("format_bytes picks binary units") {
  CHECK(format_bytes(512) == "512 bytes");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(3.0 * kGiB) == "3.0 GiB");
}

TEST_CASE("studio.skip_memory_check is a declared studio option, off by default") {
  const repa::config::OptionSpec* spec = repa::config::find_option("studio.skip_memory_check");
  REQUIRE(spec != nullptr);
  CHECK(spec->type == repa::config::OptionType::Bool);
  CHECK(spec->default_value == false);
  CHECK_FALSE(spec->simpletuner);
  CHECK(contains(spec->help, "estimated memory"));
  CHECK(repa::config::default_config()["studio"]["skip_memory_check"] == false);
}
