// SD-shaped and SDXL-shaped UNet2DConditionModel training steps, full fine-tuning or LoRA, and the peak resident
// memory of one full-size SDXL LoRA step.
//
// A step is the one a UNet family run takes: forward in train mode on caption states (and, for SDXL, the pooled
// embedding and the six size/crop ids of the text_time addition embedding), MSE to the noise, backward, AdamW.
// `full` trains every parameter; `lora` freezes the base and trains rank-16 adapters (alpha 16, dropout 0) on the
// UNet families' default targets (to_q, to_k, to_v, to_out.0), attached through core/adapters as a family run
// attaches them. Its PyTorch-eager counterpart is bench/reference/sd_unet_reference.py (same configs, same step),
// which first checks itself against the unet2d_forward fixtures; bench/reference/run_unet_bench.sh runs both in
// alternating rounds and prints the ratios.
//
// Cases (keep in sync with CASES in bench/reference/sd_unet_reference.py):
//   sd              SD 1.5 widths 320/640/1280/1280, 8 heads, cross-attention 768 (77 tokens), layers_per_block 1
//                   (SD 1.5: 2)
//   sdxl            SDXL widths 320/640/1280, heads 5/10/20 of 64, cross-attention 2048 (77 tokens), linear
//                   projections, text_time (256-wide time ids, 2816 inputs), layers_per_block 1 (SDXL: 2),
//                   transformer_layers_per_block [1, 1, 2] (SDXL: [1, 2, 10])
//   sdxl_full_size  SDXL-base's own config (2.567 B parameters), meant for `--mode lora --checkpointing --size 128`
//
// Usage: bench_sd_unet --case sd|sdxl|sdxl_full_size [--mode full|lora] [--size 64] [--batch 1] [--iters 3]
//                      [--warmup 1] [--threads N] [--checkpointing]
// Prints the median / min ms per step, the process CPU time per step, and the peak resident set (ru_maxrss).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/adapters/lora_model.h"
#include "core/adapters/lora_targets.h"
#include "core/base/threads.h"
#include "core/models/unet_2d_condition.h"

namespace {

const char* kSd = R"({"block_out_channels": [320, 640, 1280, 1280],
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "layers_per_block": 1, "attention_head_dim": 8, "cross_attention_dim": 768,
  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4})";
const char* kSdxl = R"({"block_out_channels": [320, 640, 1280],
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "layers_per_block": 1, "transformer_layers_per_block": [1, 1, 2], "attention_head_dim": [5, 10, 20],
  "cross_attention_dim": 2048, "use_linear_projection": true, "addition_embed_type": "text_time",
  "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4})";
const char* kSdxlFullSize = R"({"block_out_channels": [320, 640, 1280],
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "layers_per_block": 2, "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
  "cross_attention_dim": 2048, "use_linear_projection": true, "addition_embed_type": "text_time",
  "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4})";
constexpr int64_t kTokens = 77;
constexpr int64_t kPooled = 1280;  // SDXL's pooled text embedding; 1280 + 6 × 256 = 2816

struct Options {
  std::string case_name;
  std::string mode = "full";
  int64_t batch = 1;
  int64_t size = 64;
  int iters = 3;
  int warmup = 1;
  int threads = 0;
  bool checkpointing = false;
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .flag("--checkpointing", &o.checkpointing)
      .value("--case", &o.case_name)
      .value("--mode", &o.mode)
      .value("--batch", &o.batch)
      .value("--size", &o.size)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .parse(argc, argv);
  repa::bench::require_one_of("--case", o.case_name, {"sd", "sdxl", "sdxl_full_size"});
  repa::bench::require_one_of("--mode", o.mode, {"full", "lora"});
  if (o.iters < 1 || o.warmup < 0 || o.batch < 1 || o.size < 8 || o.size % 8 != 0)
    throw std::runtime_error("--iters >= 1, --warmup >= 0, --batch >= 1 and --size a multiple of 8 are required");
  return o;
}

int run(const Options& o) {
  repa::configure_torch_threads(o.threads);
  const char* json = o.case_name == "sd" ? kSd : o.case_name == "sdxl" ? kSdxl : kSdxlFullSize;
  const bool xl = o.case_name != "sd";

  torch::manual_seed(0);
  const auto build_start = std::chrono::steady_clock::now();
  repa::models::UNet2DConditionModel unet(
      repa::models::UNet2DConditionConfig::from_json(nlohmann::json::parse(json)));
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
  const int64_t params = unet->num_parameters();
  unet->train();
  repa::models::UNetMemoryOptions memory;
  memory.gradient_checkpointing = o.checkpointing;
  unet->set_memory_options(memory);

  // LoRA as a family run attaches it: the base frozen first, then the family's default targets.
  std::unique_ptr<repa::adapters::LoraModel> lora;
  std::vector<torch::Tensor> trainable;
  if (o.mode == "lora") {
    for (auto& p : unet->parameters()) p.set_requires_grad(false);
    repa::adapters::LoraSettings settings;
    settings.rank = 16;
    settings.alpha = 16.0;
    settings.dropout = 0.0;
    const auto& family = repa::adapters::family_lora(xl ? "sdxl" : "sd1x");
    lora = std::make_unique<repa::adapters::LoraModel>(*unet, settings,
                                                       repa::adapters::resolve_targets(family, nlohmann::json::object()));
    trainable = lora->parameters();
  } else {
    trainable = unet->parameters();
  }
  int64_t trainable_count = 0;
  for (const auto& p : trainable) trainable_count += p.numel();
  torch::optim::AdamW optimizer(trainable, torch::optim::AdamWOptions(1e-4));

  const int64_t cross = xl ? 2048 : 768;
  const auto x = torch::randn({o.batch, 4, o.size, o.size});
  const auto noise = torch::randn_like(x);
  const auto t = torch::randint(0, 1000, {o.batch}, torch::kLong);
  const auto context = torch::randn({o.batch, kTokens, cross});
  repa::models::UNetConditioning cond;
  if (xl) {
    cond.text_embeds = torch::randn({o.batch, kPooled});
    const double px = static_cast<double>(o.size * 8);
    cond.time_ids = torch::tensor({px, px, 0.0, 0.0, px, px}, torch::kFloat32).repeat({o.batch, 1});
  }

  const double rss_built = repa::bench::peak_rss_mib();
  const auto times = repa::bench::time_steps(o.warmup, o.iters, [&] {
    for (auto& p : trainable) p.mutable_grad() = torch::Tensor();  // as zero_grad(set_to_none)
    const auto out = unet->forward(x, t, context, cond);
    const auto loss = torch::mse_loss(out.sample, noise);
    loss.backward();
    optimizer.step();
  });
  std::string peaks;
  for (const double r : times.rss_mib) peaks += (peaks.empty() ? "" : " ") + std::to_string(static_cast<long long>(r));
  std::printf("libtorch      %-14s %-4s params %10lld trainable %10lld batch %lld %lldx%lld%s: median %9.1f ms/step, "
              "min %9.1f, cpu %9.1f ms/step, peak rss %.0f MiB (built %.0f MiB in %.1f s; after each step: %s)  "
              "(libtorch %s, %d threads)\n",
              o.case_name.c_str(), o.mode.c_str(), static_cast<long long>(params),
              static_cast<long long>(trainable_count), static_cast<long long>(o.batch),
              static_cast<long long>(o.size), static_cast<long long>(o.size),
              o.checkpointing ? " ckpt" : "", times.median_ms(), times.min_ms(), times.median_cpu_ms(),
              repa::bench::peak_rss_mib(), rss_built, build_s, peaks.c_str(), TORCH_VERSION, torch::get_num_threads());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_sd_unet", [&] { return run(parse(argc, argv)); });
}
