// Images per second of the native DINOv2 forward (forward_features, fp32, eval, no grad) at a given image
// size, for ViT-S/14 and ViT-B/14 by default. Weights are read from --weights-dir (Hugging Face naming,
// <dir>/dinov2_vit<size>14.safetensors) or, when absent there, made randomly (seeded) and written there so
// that the PyTorch reference (bench/reference/dinov2_reference.py) times the very same weights.
//
// Usage: bench_dinov2 [--sizes s,b] [--image 224] [--batch 8] [--iters 5] [--warmup 1] [--threads N]
//                     [--weights-dir DIR]
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

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
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--sizes") {
      o.sizes.clear();
      std::stringstream list(next());
      for (std::string s; std::getline(list, s, ',');) o.sizes.push_back(s);
    } else if (a == "--image") {
      o.image = std::stoll(next());
    } else if (a == "--batch") {
      o.batch = std::stoll(next());
    } else if (a == "--iters") {
      o.iters = std::stoi(next());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(next());
    } else if (a == "--threads") {
      o.threads = std::stoi(next());
    } else if (a == "--weights-dir") {
      o.weights_dir = next();
    } else {
      throw std::runtime_error("unknown argument " + a);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace repa::encoders;
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dinov2: %s\n", e.what());
    return 2;
  }
  const int threads = repa::configure_torch_threads(o.threads);
  std::printf("# bench_dinov2: libtorch %s, %d threads, batch %lld, %lldx%lld px, %d warm-up + %d timed batches\n",
              TORCH_VERSION, threads, static_cast<long long>(o.batch), static_cast<long long>(o.image),
              static_cast<long long>(o.image), o.warmup, o.iters);
  for (const auto& size : o.sizes) {
    const std::string name = "dinov2_vit" + size + "14";
    Dinov2 model{nullptr};
    const auto path = o.weights_dir.empty() ? "" : (std::filesystem::path(o.weights_dir) / (name + ".safetensors")).string();
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
    for (int i = 0; i < o.warmup; ++i) checksum += model->forward(pixels).patch_tokens.sum().item<double>();
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    for (int i = 0; i < o.iters; ++i) checksum += model->forward(pixels).patch_tokens.sum().item<double>();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // CPU seconds per image (all threads) stay comparable when other work shares the machine.
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    const double images = static_cast<double>(o.batch * o.iters);
    std::printf("libtorch  %-15s %8.2f images/s  %8.1f ms/batch  %7.2f cpu-s/image  (checksum %.4f)\n", name.c_str(),
                images / seconds, 1000.0 * seconds / o.iters, cpu_seconds / images, checksum);
    std::fflush(stdout);
  }
  return 0;
}
