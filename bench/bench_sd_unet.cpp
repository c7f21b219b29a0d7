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
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

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
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--checkpointing") {
      o.checkpointing = true;
      continue;
    }
    if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
    const std::string v = argv[++i];
    if (a == "--case")
      o.case_name = v;
    else if (a == "--mode")
      o.mode = v;
    else if (a == "--batch")
      o.batch = std::stoll(v);
    else if (a == "--size")
      o.size = std::stoll(v);
    else if (a == "--iters")
      o.iters = std::stoi(v);
    else if (a == "--warmup")
      o.warmup = std::stoi(v);
    else if (a == "--threads")
      o.threads = std::stoi(v);
    else
      throw std::runtime_error("unknown option " + a);
  }
  if (o.case_name != "sd" && o.case_name != "sdxl" && o.case_name != "sdxl_full_size")
    throw std::runtime_error("--case must be sd, sdxl or sdxl_full_size, got '" + o.case_name + "'");
  if (o.mode != "full" && o.mode != "lora") throw std::runtime_error("--mode must be full or lora, got " + o.mode);
  if (o.iters < 1 || o.warmup < 0 || o.batch < 1 || o.size < 8 || o.size % 8 != 0)
    throw std::runtime_error("--iters >= 1, --warmup >= 0, --batch >= 1 and --size a multiple of 8 are required");
  return o;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) try {
  const auto o = parse(argc, argv);
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

  const auto step = [&] {
    for (auto& p : trainable) p.mutable_grad() = torch::Tensor();  // as zero_grad(set_to_none)
    const auto out = unet->forward(x, t, context, cond);
    const auto loss = torch::mse_loss(out.sample, noise);
    loss.backward();
    optimizer.step();
  };
  const double rss_built = peak_rss_mib();
  std::vector<double> ms, cpu_ms, rss_after;
  for (int i = 0; i < o.warmup + o.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto cpu_start = std::clock();
    step();
    const double cpu = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    rss_after.push_back(peak_rss_mib());
    if (i >= o.warmup) ms.push_back(wall), cpu_ms.push_back(cpu);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu_ms.begin(), cpu_ms.end());
  std::string peaks;
  for (const double r : rss_after) peaks += (peaks.empty() ? "" : " ") + std::to_string(static_cast<long long>(r));
  std::printf("libtorch      %-14s %-4s params %10lld trainable %10lld batch %lld %lldx%lld%s: median %9.1f ms/step, "
              "min %9.1f, cpu %9.1f ms/step, peak rss %.0f MiB (built %.0f MiB in %.1f s; after each step: %s)  "
              "(libtorch %s, %d threads)\n",
              o.case_name.c_str(), o.mode.c_str(), static_cast<long long>(params),
              static_cast<long long>(trainable_count), static_cast<long long>(o.batch),
              static_cast<long long>(o.size), static_cast<long long>(o.size),
              o.checkpointing ? " ckpt" : "", ms[ms.size() / 2], ms.front(), cpu_ms[cpu_ms.size() / 2],
              peak_rss_mib(), rss_built, build_s, peaks.c_str(), TORCH_VERSION, torch::get_num_threads());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_sd_unet: %s\n", e.what());
  return 2;
}
