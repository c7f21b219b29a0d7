// Data-parallel scaling on this machine (not a test): the trainer's step at 1 and 2 processes (Gloo over
// 127.0.0.1, one LibTorch thread each, the same per-rank batch), with the time each step waits for its
// gradient all-reduce and the bytes it reduces; then the all-reduce volume per step of SDXL and Flux LoRA
// computed from their trainable parameter counts (docs/performance.md).
//
//   bench_distributed [--steps N] [--warmup N] [--batch B] [--processes 1,2] [--width W] [--depth D]
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/data/demo_dataset.h"
#include "core/train/distributed.h"
#include "core/train/trainer.h"

namespace fs = std::filesystem;
using repa::train::Trainer;

namespace {

struct Settings {
  int steps = 10, warmup = 3, batch = 8, width = 128, depth = 4;
  std::vector<int> processes{1, 2};
};

nlohmann::json config_for(const std::string& root, const Settings& s, int world) {
  return {{"output_dir", root + "/runs"},
          {"resolution", 32},
          {"max_train_steps", s.steps + s.warmup + 1},
          {"train_batch_size", s.batch},
          {"learning_rate", 1e-4},
          {"lr_scheduler", "constant"},
          {"seed", 1},
          {"use_ema", true},
          {"ema_decay", 0.99},
          {"max_grad_norm", 1.0},
          {"checkpoint_step_interval", 0},
          {"validation_step_interval", 0},
          {"mixed_precision", "no"},
          {"crepa_enabled", true},
          {"crepa_block_index", 1},
          {"crepa_encoder", "dinov2_vits14"},
          {"crepa_encoder_image_size", 112},
          {"studio",
           {{"dataset_dir", root + "/data"},
            {"run_name", "world-" + std::to_string(world)},
            {"architecture", "sit"},
            {"sit_size", "custom"},
            {"patch_size", 4},
            {"depth", s.depth},
            {"hidden_size", s.width},
            {"num_heads", 4},
            {"encoder_random_init", true},
            {"device", "cpu"},
            {"num_workers", 1},
            {"skip_memory_check", true}}}};
}

// One rank: set-up, warm-up, then `steps` timed steps. Rank 0 writes its numbers to `out`.
int rank_main(const std::string& root, const Settings& s, int world, int rank, int port, const std::string& out) {
  if (world > 1) {
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  }
  torch::set_num_threads(1);
  Trainer trainer(config_for(root, s, world));
  for (int i = 0; i < s.warmup; ++i) trainer.train_step();
  if (trainer.data_parallel()) trainer.data_parallel()->take_wait_seconds();
  const auto steps = repa::bench::time_steps(0, s.steps, [&] { trainer.train_step(); });
  const double total = steps.total_ms() / 1000.0;
  double waited = 0.0, reduce_ms = 0.0;
  if (auto* group = trainer.data_parallel()) {
    waited = group->take_wait_seconds();
    // The all-reduce alone, on a buffer of the step's gradient size: the transfer without the ranks' imbalance.
    auto buffer = torch::ones({trainer.trainable_parameter_count()});
    group->barrier();
    reduce_ms = repa::bench::time_steps(0, 10, [&] { group->all_reduce_sum(buffer); }).total_ms() / 10;
  }
  if (rank == 0) {
    const nlohmann::json result = {
        {"processes", world},
        {"batch_per_rank", s.batch},
        {"steps", s.steps},
        {"steps_per_sec", s.steps / total},
        {"images_per_sec", s.steps * s.batch * world / total},
        {"median_step_ms", steps.median_ms()},
        {"collective_wait_ms_per_step", 1000.0 * waited / s.steps},
        {"all_reduce_alone_ms", reduce_ms},
        {"trainable_parameters", trainer.trainable_parameter_count()},
        {"all_reduce_bytes_per_step", world > 1 ? trainer.trainable_parameter_count() * 4 : 0}};
    std::ofstream(out) << result.dump() << "\n";
  }
  return 0;
}

Settings parse(int argc, char** argv) {
  Settings s;
  repa::bench::Options()
      .value("--steps", &s.steps)
      .value("--warmup", &s.warmup)
      .value("--batch", &s.batch)
      .value("--width", &s.width)
      .value("--depth", &s.depth)
      .value("--processes", &s.processes)
      .parse(argc, argv);
  if (s.steps < 1 || s.warmup < 0) throw std::runtime_error("--steps must be at least 1 and --warmup at least 0");
  return s;
}

// LoRA rank r on a Linear(in, out) trains r·(in + out) values.
int64_t lora(int64_t r, int64_t in, int64_t out) {
  return r * (in + out);
}

int run(const Settings& s) {
  const fs::path root = fs::temp_directory_path() / ("repa-bench-dp-" + std::to_string(::getpid()));
  fs::create_directories(root);
  repa::data::generate_demo_dataset((root / "data").string(), {4, 32, 7});
  std::printf(
      "SiT depth %d width %d, 32 px, REPA (random DINOv2-S/14 teacher, cached tokens), batch %d per rank, "
      "1 thread per process, %d timed steps after %d warm-up; %ld cores\n",
      s.depth, s.width, s.batch, s.steps, s.warmup, ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-10s %12s %12s %14s %22s %18s %16s\n", "processes", "steps/s", "images/s", "median step",
              "all-reduce wait/step", "bytes/step", "all-reduce alone");
  for (int world : s.processes) {
    const int port = repa::train::free_local_port();
    const std::string out = (root / ("result-" + std::to_string(world) + ".json")).string();
    std::vector<pid_t> pids;
    std::fflush(nullptr);
    for (int r = 0; r < world; ++r) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        int code = 1;
        try {
          code = rank_main(root.string(), s, world, r, port, out);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        }
        std::fflush(nullptr);
        ::_exit(code);
      }
      pids.push_back(pid);
    }
    bool ok = true;
    for (pid_t pid : pids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    std::ifstream in(out);
    if (!ok || !in) {
      std::printf("%-10d failed\n", world);
      continue;
    }
    const auto r = nlohmann::json::parse(in);
    std::printf("%-10d %12.2f %12.1f %11.1f ms %19.2f ms %18lld %13.2f ms\n", world, r["steps_per_sec"].get<double>(),
                r["images_per_sec"].get<double>(), r["median_step_ms"].get<double>(),
                r["collective_wait_ms_per_step"].get<double>(),
                static_cast<long long>(r["all_reduce_bytes_per_step"].get<int64_t>()),
                r["all_reduce_alone_ms"].get<double>());
    std::printf("  %s\n", r.dump().c_str());
  }

  // All-reduce volume per step from trainable parameter counts (fp32 gradients, rank 16 on the families'
  // default LoRA targets; a ring all-reduce sends 2(p-1)/p of the payload from each rank).
  const int64_t r = 16;
  // SDXL UNet: 70 transformer blocks (10 at 640 channels, 60 at 1280); self-attention q,k,v,out d→d, cross-attention
  // q,out d→d and k,v from the 2048-wide text states.
  auto sdxl_block = [&](int64_t d) { return 6 * lora(r, d, d) + 2 * lora(r, 2048, d); };
  const int64_t sdxl = 10 * sdxl_block(640) + 60 * sdxl_block(1280);
  // Flux.1: 19 double blocks (to_q/k/v, add_q/k/v_proj, to_out.0, to_add_out: 8 × 3072→3072) and 38 single
  // blocks (to_q/k/v), the "all" target preset.
  const int64_t flux = 19 * 8 * lora(r, 3072, 3072) + 38 * 3 * lora(r, 3072, 3072);
  // REPA/U-REPA projector (Linear d→2048, 2048→2048, 2048→1536 for DINOv2-G/14) trains beside the adapters.
  auto projector = [](int64_t d) { return d * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 1536 + 1536; };
  std::printf("\nAll-reduce volume per optimizer step (fp32 gradients, LoRA rank %lld):\n", static_cast<long long>(r));
  std::printf("%-34s %14s %14s %16s %16s\n", "model", "trainable", "payload", "sent/rank p=2", "sent/rank p=8");
  const std::vector<std::pair<std::string, int64_t>> models = {
      {"SDXL LoRA (to_q,to_k,to_v,to_out.0)", sdxl},
      {"SDXL LoRA + U-REPA projector (1280)", sdxl + projector(1280)},
      {"Flux.1 LoRA (all)", flux},
      {"Flux.1 LoRA + REPA projector (3072)", flux + projector(3072)}};
  for (const auto& [name, count] : models) {
    const double payload = 4.0 * static_cast<double>(count);
    std::printf("%-34s %14lld %11.1f MB %13.1f MB %13.1f MB\n", name.c_str(), static_cast<long long>(count),
                payload / 1e6, payload * 2 * (2 - 1) / 2 / 1e6, payload * 2 * (8 - 1) / 8 / 1e6);
  }
  std::error_code ignored;
  fs::remove_all(root, ignored);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_distributed", [&] { return run(parse(argc, argv)); });
}
