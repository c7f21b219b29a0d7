// Milliseconds per SD3- or Flux-shaped training step, the step the studio's sd3 and flux runs take: σ drawn as
// sigmoid(N(0, 1)) (SimpleTuner's default logit-normal draw), x_t = (1 − σ)·x0 + σ·noise, the transformer in train
// mode on T5-shaped text states and a pooled CLIP embedding, the REPA block `tap` kept, the prediction against the
// flow target noise − x0 by MSE, backward, AdamW. Weights are drawn from N(0, 0.02): real widths, reduced depth.
//
//   --case sd3:  SD3Transformer2DModel at SD3-medium's width (24 heads of 64 = 1536, joint_attention_dim 4096, pooled
//                2048, patch 2, 16 latent channels, pos_embed_max_size 192), `--depth` joint blocks (the last one
//                context_pre_only, as in every SD3); timestep 1000·σ. `--qk-norm rms_norm --dual-blocks N` gives
//                SD3.5's RMS qk-norm and the second self-attention in the first N blocks.
//   --case flux: FluxTransformer2DModel at Flux.1's width (24 heads of 128 = 3072, joint 4096, pooled 768, rotary
//                axes 16/56/56, guidance embedding as dev), `--depth` double + `--single` single blocks; latents packed
//                2×2 into 64-channel tokens with diffusers' position ids, the prediction unpacked for the loss;
//                timestep σ, guidance 1.0 (flux_guidance_value's default).
//
// Its PyTorch-eager counterpart is bench/reference/flow_dit_reference.py (`bench`), which first checks itself against
// the sd3_transformer_forward and flux_transformer_forward fixtures; bench/reference/run_flow_dit_bench.sh runs both
// in alternating rounds and prints the ratio.
//
// Usage: bench_flow_dit [--case sd3|flux] [--depth 2 (sd3) / 1 (flux)] [--single 1] [--latent 32] [--tokens 154
//                       (sd3) / 512 (flux)] [--batch 1] [--tap 0] [--qk-norm none|rms_norm] [--dual-blocks 0]
//                       [--optimizer fused|torch] [--iters 3] [--warmup 1] [--threads N] [--profile 0|1]
//
// As in `repa-train`, the heap keeps freed blocks for reuse (core/base/memory.h; REPA_MALLOC_DEFAULT=1 leaves
// glibc's defaults) and the optimizer is the trainer's FusedAdamW; `--optimizer torch` takes LibTorch's AdamW, the
// same operators as PyTorch's torch.optim.AdamW.
//
// --profile 1 runs one more step under LibTorch's profiler after the timed ones and prints the operators with the most
// self time (as flow_dit_reference.py's --profile 1 does with PyTorch's profiler).
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/base/memory.h"
#include "core/base/threads.h"
#include "core/models/flux_transformer.h"
#include "core/models/sd3_transformer.h"
#include "core/train/backbone_flow_families.h"
#include "core/train/fused_adamw.h"

namespace {

struct Options {
  std::string case_name = "sd3", qk_norm = "none", optimizer = "fused";
  int64_t depth = -1, single = 1, latent = 32, tokens = -1, batch = 1, tap = 0, dual_blocks = 0;
  int iters = 3, warmup = 1, threads = 0, profile = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--case", &o.case_name)
      .value("--depth", &o.depth)
      .value("--single", &o.single)
      .value("--latent", &o.latent)
      .value("--tokens", &o.tokens)
      .value("--batch", &o.batch)
      .value("--tap", &o.tap)
      .value("--qk-norm", &o.qk_norm)
      .value("--optimizer", &o.optimizer)
      .value("--dual-blocks", &o.dual_blocks)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .value("--profile", &o.profile)
      .parse(argc, argv);
  repa::bench::require_one_of("--case", o.case_name, {"sd3", "flux"});
  repa::bench::require_one_of("--qk-norm", o.qk_norm, {"none", "rms_norm"});
  repa::bench::require_one_of("--optimizer", o.optimizer, {"fused", "torch"});
  if (o.depth < 0) o.depth = o.case_name == "sd3" ? 2 : 1;
  if (o.tokens < 0) o.tokens = o.case_name == "sd3" ? 154 : 512;
  if (o.latent <= 0 || o.latent % 2) throw std::runtime_error("--latent must be positive and even");
  if (o.iters <= 0) throw std::runtime_error("--iters must be positive");
  return o;
}

// One step under the legacy CPU profiler: self time per operator (time in the operator minus its child operators),
// the 15 largest, to stderr.
template <typename Step>
void profile_step(Step step) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  step();
  const auto lists = prof::disableProfilerLegacy();
  struct Open {
    const prof::LegacyEvent* push;
    double children;
  };
  std::map<std::string, std::pair<double, int>> self;  // name → (self µs, calls)
  double total = 0;
  for (const auto& list : lists) {
    std::vector<Open> stack;
    for (const auto& e : list) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const auto open = stack.back();
        stack.pop_back();
        const double elapsed = open.push->cpuElapsedUs(e);
        auto& entry = self[open.push->name()];
        entry.first += elapsed - open.children;
        entry.second += 1;
        if (!stack.empty())
          stack.back().children += elapsed;
        else
          total += elapsed;
      }
    }
  }
  std::vector<std::pair<double, std::string>> order;
  for (const auto& [name, entry] : self) order.emplace_back(entry.first, name);
  std::sort(order.rbegin(), order.rend());
  std::fprintf(stderr, "profile of one step (%.1f ms in top-level operators), self time:\n", total / 1000.0);
  for (std::size_t i = 0; i < order.size() && i < 15; ++i)
    std::fprintf(stderr, "  %-40s %9.1f ms %6d calls\n", order[i].second.c_str(), order[i].first / 1000.0,
                 self[order[i].second].second);
}

// The timed steps, then (--profile 1) one more under the profiler.
template <typename Step>
repa::bench::StepTimes time_and_profile(const Options& o, Step step) {
  auto times = repa::bench::time_steps(o.warmup, o.iters, step);
  if (o.profile) profile_step(step);
  return times;
}

// The trainer's FusedAdamW (one pass per parameter), or LibTorch's AdamW: the same ATen operators PyTorch's
// torch.optim.AdamW runs.
std::unique_ptr<torch::optim::AdamW> make_optimizer(const Options& o, const std::vector<torch::Tensor>& params) {
  const auto options = torch::optim::AdamWOptions(1e-4).weight_decay(0.0);
  if (o.optimizer == "fused") return std::make_unique<repa::train::FusedAdamW>(params, options);
  return std::make_unique<torch::optim::AdamW>(params, options);
}

void init_weights(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) p.normal_(0.0, 0.02);
}

int64_t count(const torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

std::string heap_note;  // what keep_freed_memory did

void report(const Options& o, const std::string& shape, int64_t params, int threads,
            const repa::bench::StepTimes& times) {
  std::printf(
      "libtorch  %s %s latent %lldx%lld tokens %lld batch %lld tap %lld params %.2fM threads %d: median %.1f ms/step "
      "(min %.1f, max %.1f, %d iters; %s AdamW, %s)\n",
      o.case_name.c_str(), shape.c_str(), static_cast<long long>(o.latent), static_cast<long long>(o.latent),
      static_cast<long long>(o.tokens), static_cast<long long>(o.batch), static_cast<long long>(o.tap), params / 1e6,
      threads, times.median_ms(), times.min_ms(), times.max_ms(), o.iters, o.optimizer.c_str(), heap_note.c_str());
}

int sd3_step(const Options& o, int threads) {
  repa::models::SD3TransformerConfig config;
  config.sample_size = 128, config.patch_size = 2, config.in_channels = 16, config.out_channels = 16;
  config.num_layers = o.depth, config.attention_head_dim = 64, config.num_attention_heads = 24;
  config.joint_attention_dim = 4096, config.caption_projection_dim = 1536, config.pooled_projection_dim = 2048;
  config.pos_embed_max_size = 192;
  config.qk_norm = o.qk_norm == "none" ? "" : o.qk_norm;
  for (int64_t i = 0; i < o.dual_blocks; ++i) config.dual_attention_layers.push_back(i);
  repa::models::SD3Transformer model(config);
  init_weights(*model);
  model->train();
  auto optimizer = make_optimizer(o, model->parameters());
  const auto x0 = torch::randn({o.batch, 16, o.latent, o.latent});
  const auto context = torch::randn({o.batch, o.tokens, 4096});
  const auto pooled = torch::randn({o.batch, 2048});
  auto step = [&] {
    const auto sigma = torch::sigmoid(torch::randn({o.batch}));
    const auto noise = torch::randn_like(x0);
    const auto s = sigma.view({-1, 1, 1, 1});
    const auto x_t = (1 - s) * x0 + s * noise;
    const auto out = model->forward(x_t, context, pooled, sigma * 1000.0, o.tap);
    const auto loss = (out.prediction - (noise - x0)).pow(2).mean();
    optimizer->zero_grad();
    loss.backward();
    optimizer->step();
    return loss.item<double>();
  };
  const auto times = time_and_profile(o, step);
  const std::string shape = "depth " + std::to_string(o.depth) + " width 1536 heads 24 qk-norm " + o.qk_norm +
                            " dual " + std::to_string(o.dual_blocks);
  report(o, shape, count(*model), threads, times);
  return 0;
}

int flux_step(const Options& o, int threads) {
  repa::models::FluxTransformerConfig config;
  config.patch_size = 1, config.in_channels = 64, config.out_channels = 64;
  config.num_layers = o.depth, config.num_single_layers = o.single;
  config.attention_head_dim = 128, config.num_attention_heads = 24;
  config.joint_attention_dim = 4096, config.pooled_projection_dim = 768, config.guidance_embeds = true;
  config.axes_dims_rope = {16, 56, 56};
  repa::models::FluxTransformer model(config);
  init_weights(*model);
  model->train();
  auto optimizer = make_optimizer(o, model->parameters());
  const int64_t side = o.latent;
  const auto x0 = torch::randn({o.batch, 16, side, side});
  const auto context = torch::randn({o.batch, o.tokens, 4096});
  const auto pooled = torch::randn({o.batch, 768});
  const auto img_ids = repa::train::flux_image_ids(side, side, torch::kCPU);
  const auto txt_ids = torch::zeros({o.tokens, 3});
  const auto guidance = torch::ones({o.batch});
  auto step = [&] {
    const auto sigma = torch::sigmoid(torch::randn({o.batch}));
    const auto noise = torch::randn_like(x0);
    const auto s = sigma.view({-1, 1, 1, 1});
    const auto x_t = (1 - s) * x0 + s * noise;
    const auto out =
        model->forward(repa::train::flux_pack_latents(x_t), context, pooled, sigma, img_ids, txt_ids, guidance, o.tap);
    const auto prediction = repa::train::flux_unpack_latents(out.prediction, 16, side, side);
    const auto loss = (prediction - (noise - x0)).pow(2).mean();
    optimizer->zero_grad();
    loss.backward();
    optimizer->step();
    return loss.item<double>();
  };
  const auto times = time_and_profile(o, step);
  const std::string shape =
      "double " + std::to_string(o.depth) + " single " + std::to_string(o.single) + " width 3072 heads 24 guidance";
  report(o, shape, count(*model), threads, times);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_flow_dit", [&] {
    const auto o = parse(argc, argv);
    heap_note = repa::keep_freed_memory();  // as repa-train does (REPA_MALLOC_DEFAULT=1: glibc's defaults)
    const int threads = repa::configure_torch_threads(o.threads);
    torch::manual_seed(0);
    return o.case_name == "sd3" ? sd3_step(o, threads) : flux_step(o, threads);
  });
}
