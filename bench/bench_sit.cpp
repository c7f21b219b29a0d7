// Milliseconds per training step of a small SiT: linear-path noising, forward in train mode (label dropout,
// block tap), velocity MSE, backward, AdamW. The PyTorch-eager counterpart of the very same model and step is
// bench/reference/sit_reference.py (`bench`), which first checks itself against the sit_forward fixtures;
// bench/reference/run_sit_bench.sh runs both and prints the ratio.
//
// Usage: bench_sit [--batch 8] [--input 32] [--channels 4] [--depth 4] [--width 256] [--heads 4] [--patch 2]
//                  [--tap 1] [--iters 10] [--warmup 2] [--threads N]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/base/threads.h"
#include "core/diffusion/objective.h"
#include "core/models/sit.h"

namespace {

struct Options {
  int64_t batch = 8, input = 32, channels = 4, depth = 4, width = 256, heads = 4, patch = 2, tap = 1;
  int iters = 10, warmup = 2, threads = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
    const std::string v = argv[++i];
    if (a == "--batch")
      o.batch = std::stoll(v);
    else if (a == "--input")
      o.input = std::stoll(v);
    else if (a == "--channels")
      o.channels = std::stoll(v);
    else if (a == "--depth")
      o.depth = std::stoll(v);
    else if (a == "--width")
      o.width = std::stoll(v);
    else if (a == "--heads")
      o.heads = std::stoll(v);
    else if (a == "--patch")
      o.patch = std::stoll(v);
    else if (a == "--tap")
      o.tap = std::stoll(v);
    else if (a == "--iters")
      o.iters = std::stoi(v);
    else if (a == "--warmup")
      o.warmup = std::stoi(v);
    else if (a == "--threads")
      o.threads = std::stoi(v);
    else
      throw std::runtime_error("unknown option " + a);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto o = parse(argc, argv);
    const int threads = repa::configure_torch_threads(o.threads);
    torch::manual_seed(0);
    repa::models::SiTConfig config;
    config.input_size = o.input, config.in_channels = o.channels, config.patch_size = o.patch;
    config.depth = o.depth, config.hidden_size = o.width, config.num_heads = o.heads;
    config.num_classes = 1000, config.class_dropout_prob = 0.1;
    repa::models::SiT model(config);
    {
      // Random weights everywhere (the adaLN-Zero start would leave whole branches at zero).
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.normal_(0.0, 0.02);
    }
    model->train();
    torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.0));
    const repa::diffusion::Objective objective(repa::diffusion::ObjectiveKind::Linear);
    const repa::diffusion::TimestepSampler sampler;
    const auto x0 = torch::randn({o.batch, o.channels, o.input, o.input});
    const auto labels = torch::randint(0, 1000, {o.batch}, torch::kLong);

    auto step = [&] {
      const auto t = objective.sample_time(sampler, o.batch);
      const auto batch = objective.noise(x0, torch::randn_like(x0), t);
      const auto out = model->forward(batch.x_t, batch.model_time, labels, o.tap);
      const auto loss = (out.prediction - batch.target).pow(2).mean();
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      return loss.item<double>();
    };
    for (int i = 0; i < o.warmup; ++i) step();
    std::vector<double> ms;
    for (int i = 0; i < o.iters; ++i) {
      const auto start = std::chrono::steady_clock::now();
      step();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    int64_t params = 0;
    for (const auto& p : model->parameters()) params += p.numel();
    std::printf(
        "libtorch  sit depth %lld width %lld heads %lld patch %lld input %lldx%lldx%lld batch %lld params %.2fM "
        "threads %d: median %.1f ms/step (min %.1f, max %.1f, %d iters)\n",
        static_cast<long long>(o.depth), static_cast<long long>(o.width), static_cast<long long>(o.heads),
        static_cast<long long>(o.patch), static_cast<long long>(o.channels), static_cast<long long>(o.input),
        static_cast<long long>(o.input), static_cast<long long>(o.batch), params / 1e6, threads, ms[ms.size() / 2],
        ms.front(), ms.back(), o.iters);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sit: %s\n", e.what());
    return 2;
  }
}
