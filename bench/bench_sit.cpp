// Milliseconds per training step of a small SiT: linear-path noising, forward in train mode (label dropout,
// block tap), velocity MSE, backward, AdamW. The PyTorch-eager counterpart of the very same model and step is
// bench/reference/sit_reference.py (`bench`), which first checks itself against the sit_forward fixtures;
// bench/reference/run_sit_bench.sh runs both and prints the ratio.
//
// Usage: bench_sit [--batch 8] [--input 32] [--channels 4] [--depth 4] [--width 256] [--heads 4] [--patch 2]
//                  [--tap 1] [--iters 10] [--warmup 2] [--threads N]
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench_support.h"
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
  repa::bench::Options()
      .value("--batch", &o.batch)
      .value("--input", &o.input)
      .value("--channels", &o.channels)
      .value("--depth", &o.depth)
      .value("--width", &o.width)
      .value("--heads", &o.heads)
      .value("--patch", &o.patch)
      .value("--tap", &o.tap)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .parse(argc, argv);
  return o;
}

int run(const Options& o) {
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

  const auto times = repa::bench::time_steps(o.warmup, o.iters, [&] {
    const auto t = objective.sample_time(sampler, o.batch);
    const auto batch = objective.noise(x0, torch::randn_like(x0), t);
    const auto out = model->forward(batch.x_t, batch.model_time, labels, o.tap);
    const auto loss = (out.prediction - batch.target).pow(2).mean();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return loss.item<double>();
  });
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  std::printf(
      "libtorch  sit depth %lld width %lld heads %lld patch %lld input %lldx%lldx%lld batch %lld params %.2fM "
      "threads %d: median %.1f ms/step (min %.1f, max %.1f, %d iters)\n",
      static_cast<long long>(o.depth), static_cast<long long>(o.width), static_cast<long long>(o.heads),
      static_cast<long long>(o.patch), static_cast<long long>(o.channels), static_cast<long long>(o.input),
      static_cast<long long>(o.input), static_cast<long long>(o.batch), params / 1e6, threads, times.median_ms(),
      times.min_ms(), times.max_ms(), o.iters);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_sit", [&] { return run(parse(argc, argv)); });
}
