// Milliseconds per training step (forward in train mode, MSE to the noise, backward, AdamW) of two small
// diffusers-layout UNets: an SD-shaped UNet2DConditionModel (cross-attention) and a class-conditional
// UNet2DModel (self-attention), the shapes U-REPA trains. The PyTorch-eager counterpart with the very same
// configs is bench/reference/unet_reference.py (`bench`), which first checks itself against the
// unet2d_forward fixtures (`check`).
//
// Usage: bench_unet [--batch 4] [--size 32] [--iters 5] [--warmup 2] [--threads N] [--checkpointing]
#include <torch/torch.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/bench_support.h"
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
  repa::bench::Options()
      .value("--batch", &o.batch)
      .value("--size", &o.size)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .flag("--checkpointing", &o.checkpointing)
      .parse(argc, argv);
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
  // Wall time, and the process's CPU time (all threads): on a shared machine the latter moves less with load.
  const auto times = repa::bench::time_steps(o.warmup, o.iters, [&] {
    optimizer.zero_grad();
    const auto out = forward();
    const auto loss = torch::mse_loss(out.sample, noise) + 0.0 * out.mid_block.mean();
    loss.backward();
    optimizer.step();
  });
  std::printf("libtorch      %-10s params %9lld  batch %lld %lldx%lld: median %8.1f ms/step, min %8.1f, cpu %8.1f ms/step  "
              "(libtorch %s, %d threads%s)\n",
              name, static_cast<long long>(model->num_parameters()), static_cast<long long>(o.batch),
              static_cast<long long>(o.size), static_cast<long long>(o.size), times.median_ms(), times.min_ms(),
              times.median_cpu_ms(), TORCH_VERSION, torch::get_num_threads(),
              o.checkpointing ? ", gradient checkpointing" : "");
}

int run(const Options& o) {
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

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_unet", [&] { return run(parse(argc, argv)); });
}
