// Milliseconds per training step (forward in train mode, MSE to the noise, backward, AdamW) of two small
// diffusers-layout UNets: an SD-shaped UNet2DConditionModel (cross-attention) and a class-conditional
// UNet2DModel (self-attention), the shapes U-REPA trains. The PyTorch-eager counterpart with the very same
// configs is bench/reference/unet_reference.py (`bench`), which first checks itself against the
// unet2d_forward fixtures (`check`).
//
// Usage: bench_unet [--batch 4] [--size 32] [--iters 5] [--warmup 2] [--threads N] [--checkpointing]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/threads.h"
#include "core/models/unet_2d.h"
#include "core/models/unet_2d_condition.h"

namespace {

// Keep in sync with BENCH_CONFIGS in bench/reference/unet_reference.py.
const char* kSdShaped = R"({"block_out_channels": [64, 128, 256],
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "layers_per_block": 1, "attention_head_dim": 4, "cross_attention_dim": 64,
  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4})";
const char* kClassCond = R"({"block_out_channels": [64, 128, 256],
  "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
  "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
  "layers_per_block": 1, "attention_head_dim": 32, "num_class_embeds": 10,
  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4})";
constexpr int64_t kContextTokens = 16;

struct Options {
  int64_t batch = 4;
  int64_t size = 32;
  int iters = 5;
  int warmup = 2;
  int threads = 0;
  bool checkpointing = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--batch") {
      o.batch = std::stoll(next());
    } else if (a == "--size") {
      o.size = std::stoll(next());
    } else if (a == "--iters") {
      o.iters = std::stoi(next());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(next());
    } else if (a == "--threads") {
      o.threads = std::stoi(next());
    } else if (a == "--checkpointing") {
      o.checkpointing = true;
    } else {
      throw std::runtime_error("unknown argument " + a);
    }
  }
  return o;
}

template <typename Model, typename Forward>
void time_training(const char* name, Model& model, const Forward& forward, const torch::Tensor& noise,
                   const Options& o) {
  model->train();
  repa::models::UNetMemoryOptions memory;
  memory.gradient_checkpointing = o.checkpointing;
  model->set_memory_options(memory);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto step = [&] {
    optimizer.zero_grad();
    const auto out = forward();
    const auto loss = torch::mse_loss(out.sample, noise) + 0.0 * out.mid_block.mean();
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < o.warmup; ++i) step();
  // Wall time, and the process's CPU time (all threads): on a shared machine the latter moves less with load.
  std::vector<double> ms, cpu_ms;
  for (int i = 0; i < o.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto cpu_start = std::clock();
    step();
    cpu_ms.push_back(1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu_ms.begin(), cpu_ms.end());
  std::printf("libtorch      %-10s params %9lld  batch %lld %lldx%lld: median %8.1f ms/step, min %8.1f, cpu %8.1f ms/step  "
              "(libtorch %s, %d threads%s)\n",
              name, static_cast<long long>(model->num_parameters()), static_cast<long long>(o.batch),
              static_cast<long long>(o.size), static_cast<long long>(o.size), ms[ms.size() / 2], ms.front(),
              cpu_ms[cpu_ms.size() / 2], TORCH_VERSION, torch::get_num_threads(),
              o.checkpointing ? ", gradient checkpointing" : "");
}

}  // namespace

int main(int argc, char** argv) {
  const auto o = parse(argc, argv);
  repa::configure_torch_threads(o.threads);
  const auto timesteps = [&] { return torch::randint(0, 1000, {o.batch}, torch::kLong); };
  {
    torch::manual_seed(0);
    repa::models::UNet2DConditionModel unet(
        repa::models::UNet2DConditionConfig::from_json(nlohmann::json::parse(kSdShaped)));
    const auto x = torch::randn({o.batch, 4, o.size, o.size});
    const auto noise = torch::randn_like(x);
    const auto t = timesteps();
    const auto context = torch::randn({o.batch, kContextTokens, 64});
    time_training("sd-shaped", unet, [&] { return unet->forward(x, t, context); }, noise, o);
  }
  {
    torch::manual_seed(0);
    repa::models::UNet2DModel unet(repa::models::UNet2DConfig::from_json(nlohmann::json::parse(kClassCond)));
    const auto x = torch::randn({o.batch, 4, o.size, o.size});
    const auto noise = torch::randn_like(x);
    const auto t = timesteps();
    const auto labels = torch::randint(0, 10, {o.batch}, torch::kLong);
    time_training("classcond", unet, [&] { return unet->forward(x, t, labels); }, noise, o);
  }
  return 0;
}
