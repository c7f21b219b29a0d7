// How much the bucketed gradient all-reduce overlaps the backward (not a test): two Gloo ranks over
// 127.0.0.1, one thread each, an 8-layer MLP of width 768 (4.7 M parameters, 18.9 MB of fp32 gradients),
// forward + backward + all-reduce per step, with one bucket for everything (the reduction starts when the
// backward ends) against buckets of 1 MiB and 256 KiB (each layer's gradient travels while the layers
// below it still differentiate). Median of 30 steps after 3 warm-up; docs/performance.md.
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/train/distributed.h"
#include "core/train/gradient_buckets.h"

namespace {

torch::nn::Sequential mlp() {
  torch::nn::Sequential layers;
  for (int i = 0; i < 8; ++i) {
    layers->push_back(torch::nn::Linear(768, 768));
    layers->push_back(torch::nn::GELU());
  }
  return layers;
}

void rank_main(int rank, int port, int64_t bucket_bytes) {
  torch::set_num_threads(1);
  torch::manual_seed(1);
  auto model = mlp();
  auto params = model->parameters();
  const auto x = torch::randn({64, 768}).narrow(0, rank * 32, 32);
  const auto y = torch::randn({64, 768}).narrow(0, rank * 32, 32);
  repa::train::DistributedEnv env;
  env.rank = env.local_rank = rank;
  env.world_size = 2;
  env.master_port = port;
  repa::train::DataParallel group(env);
  repa::train::GradientBuckets buckets(group, params, bucket_bytes);
  std::vector<double> ms;
  for (int i = 0; i < 33; ++i) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    group.barrier();  // both ranks start the step together: the time is the step's, not the other rank's lag
    const auto start = std::chrono::steady_clock::now();
    const auto loss = torch::mse_loss(model->forward(x), y);
    buckets.prepare_backward(true);
    loss.backward();
    buckets.finish();
    if (i >= 3)
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  if (rank == 0)
    std::printf("bucket cap %9lld B: %2lld buckets, median step %7.2f ms (%lld bytes all-reduced)\n",
                static_cast<long long>(bucket_bytes), static_cast<long long>(buckets.bucket_count()), ms[ms.size() / 2],
                static_cast<long long>(buckets.bytes_per_step()));
}

}  // namespace

int main() {
  for (int64_t cap : {int64_t{64} << 20, int64_t{1} << 20, int64_t{256} << 10}) {
    const int port = repa::train::free_local_port();
    std::fflush(nullptr);
    const pid_t child = ::fork();
    if (child == 0) {
      rank_main(1, port, cap);
      std::fflush(nullptr);
      ::_exit(0);
    }
    rank_main(0, port, cap);
    int status = 0;
    ::waitpid(child, &status, 0);
  }
  return 0;
}
