// Training step time of the demo setup (tiny SiT + REPA, random DINOv2-S/14 teacher) with the teacher-token
// cache vs running the teacher on every batch, in the same process on the same data.
//   bench_train [--steps N] [--threads T] [--image-size S] [--batch B]
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench/bench_support.h"
#include "core/base/threads.h"
#include "core/config/registry.h"
#include "core/train/trainer.h"

namespace {

struct Options {
  int steps = 20, threads = 0, image_size = 0, batch = 16;  // image size 0: the demo preset's
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--steps", &o.steps)
      .value("--threads", &o.threads)
      .value("--image-size", &o.image_size)
      .value("--batch", &o.batch)
      .parse(argc, argv);
  if (o.steps < 1) throw std::runtime_error("--steps must be at least 1");
  return o;
}

double mean_step_ms(repa::train::Trainer& trainer, int steps) {
  // One warm-up step: allocations, first batches.
  return repa::bench::time_steps(1, steps, [&] { trainer.train_step(); }).total_ms() / steps;
}

int run(const Options& o) {
  repa::configure_torch_threads(o.threads);
  const auto dir = std::filesystem::temp_directory_path() / ("repa-bench-train-" + std::to_string(::getpid()));
  std::vector<std::string> overrides = {"output_dir=" + dir.string(), "studio.run_name=bench",
                                        "max_train_steps=100000", "checkpoint_step_interval=100000",
                                        "validation_step_interval=100000",
                                        "train_batch_size=" + std::to_string(o.batch), "studio.device=cpu"};
  if (o.image_size > 0) overrides.push_back("crepa_encoder_image_size=" + std::to_string(o.image_size));
  const auto config = repa::config::resolve_json(nlohmann::json::object(), "demo", overrides);
  const int image_size = static_cast<int>(config.value("crepa_encoder_image_size", 0));
  repa::train::Trainer trainer(config);
  const double cached = mean_step_ms(trainer, o.steps);
  trainer.set_teacher_every_step(true);
  const double live = mean_step_ms(trainer, o.steps);
  std::printf("bench_train: demo SiT (4x64, patch 4, 32 px) + REPA, DINOv2-S/14 teacher at %d px, batch %d, %d threads, "
              "%d steps each\n",
              image_size, o.batch, torch::get_num_threads(), o.steps);
  std::printf("  teacher tokens from the cache : %8.1f ms/step\n", cached);
  std::printf("  teacher forward every step    : %8.1f ms/step  (%.1fx)\n", live, live / cached);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_train", [&] { return run(parse(argc, argv)); });
}
