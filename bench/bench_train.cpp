// Training step time of the demo setup (tiny SiT + REPA, random DINOv2-S/14 teacher) with the teacher-token
// cache vs running the teacher on every batch, in the same process on the same data.
//   bench_train [--steps N] [--threads T] [--image-size S] [--batch B]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/base/threads.h"
#include "core/config/registry.h"
#include "core/train/trainer.h"

namespace {

double mean_step_ms(repa::train::Trainer& trainer, int steps) {
  trainer.train_step();  // warm-up: allocations, first batches
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) trainer.train_step();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / steps;
}

}  // namespace

int main(int argc, char** argv) try {
  int steps = 20, threads = 0, image_size = 0, batch = 16;  // image size 0: the demo preset's
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::stoi(argv[i + 1]);
    if (a == "--steps") steps = v;
    if (a == "--threads") threads = v;
    if (a == "--image-size") image_size = v;
    if (a == "--batch") batch = v;
  }
  repa::configure_torch_threads(threads);
  const auto dir = std::filesystem::temp_directory_path() / ("repa-bench-train-" + std::to_string(::getpid()));
  std::vector<std::string> overrides = {"output_dir=" + dir.string(), "studio.run_name=bench",
                                        "max_train_steps=100000", "checkpoint_step_interval=100000",
                                        "validation_step_interval=100000", "train_batch_size=" + std::to_string(batch),
                                        "studio.device=cpu"};
  if (image_size > 0) overrides.push_back("crepa_encoder_image_size=" + std::to_string(image_size));
  const auto config = repa::config::resolve_json(nlohmann::json::object(), "demo", overrides);
  image_size = static_cast<int>(config.value("crepa_encoder_image_size", 0));
  repa::train::Trainer trainer(config);
  const double cached = mean_step_ms(trainer, steps);
  trainer.set_teacher_every_step(true);
  const double live = mean_step_ms(trainer, steps);
  std::printf("bench_train: demo SiT (4x64, patch 4, 32 px) + REPA, DINOv2-S/14 teacher at %d px, batch %d, %d threads, "
              "%d steps each\n",
              image_size, batch, torch::get_num_threads(), steps);
  std::printf("  teacher tokens from the cache : %8.1f ms/step\n", cached);
  std::printf("  teacher forward every step    : %8.1f ms/step  (%.1fx)\n", live, live / cached);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train: %s\n", e.what());
  return 1;
}
