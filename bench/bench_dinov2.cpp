// Images per second of the native DINOv2 forward (forward_features, fp32, eval, no grad) at a given image
// size, for ViT-S/14 and ViT-B/14 by default. Weights are read from --weights-dir (Hugging Face naming,
// <dir>/dinov2_vit<size>14.safetensors) or, when absent there, made randomly (seeded) and written there so
// that the PyTorch reference (bench/reference/dinov2_reference.py) times the very same weights.
//
// Usage: bench_dinov2 [--sizes s,b] [--image 224] [--batch 8] [--iters 5] [--warmup 1] [--threads N]
//                     [--weights-dir DIR]
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/base/threads.h"
#include "core/encoders/dinov2_weights.h"

namespace {

struct Options {
  std::vector<std::string> sizes = {"s", "b"};
  int64_t image = 224;
  int64_t batch = 8;
  int iters = 5;
  int warmup = 1;
  int threads = 0;
  std::string weights_dir;
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--sizes", &o.sizes)
      .value("--image", &o.image)
      .value("--batch", &o.batch)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .value("--weights-dir", &o.weights_dir)
      .parse(argc, argv);
  return o;
}

int run(const Options& o) {
  using namespace repa::encoders;
  const int threads = repa::configure_torch_threads(o.threads);
  std::printf("# bench_dinov2: libtorch %s, %d threads, batch %lld, %lldx%lld px, %d warm-up + %d timed batches\n",
              TORCH_VERSION, threads, static_cast<long long>(o.batch), static_cast<long long>(o.image),
              static_cast<long long>(o.image), o.warmup, o.iters);
  for (const auto& size : o.sizes) {
    const std::string name = "dinov2_vit" + size + "14";
    Dinov2 model{nullptr};
    const auto path =
        o.weights_dir.empty() ? "" : (std::filesystem::path(o.weights_dir) / (name + ".safetensors")).string();
    if (!path.empty() && std::filesystem::exists(path)) {
      model = load_dinov2_file(path);
    } else {
      model = random_dinov2(Dinov2Config::for_size(size, false), 2024);
      model->freeze();
      if (!path.empty()) {
        std::filesystem::create_directories(o.weights_dir);
        save_dinov2(path, model, Dinov2Naming::HuggingFace);
      }
    }
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(7);
    auto pixels = torch::randn({o.batch, 3, o.image, o.image}, gen);
    double checksum = 0.0;
    const auto times = repa::bench::time_steps(
        o.warmup, o.iters, [&] { checksum += model->forward(pixels).patch_tokens.sum().item<double>(); });
    const double seconds = times.total_ms() / 1000.0;
    // CPU seconds per image (all threads) stay comparable when other work shares the machine.
    const double cpu_seconds = times.total_cpu_ms() / 1000.0;
    const double images = static_cast<double>(o.batch * o.iters);
    std::printf("libtorch  %-15s %8.2f images/s  %8.1f ms/batch  %7.2f cpu-s/image  (checksum %.4f)\n", name.c_str(),
                images / seconds, 1000.0 * seconds / o.iters, cpu_seconds / images, checksum);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_dinov2", [&] { return run(parse(argc, argv)); });
}
