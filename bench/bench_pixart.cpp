// Two PixArt-family measurements.
//
// `step` (default): milliseconds per PixArt-shaped training step, the step the studio's pixart runs take: epsilon
// noising on PixArt-Σ's linear betas at uniform integer steps, forward in train mode on T5-shaped caption states with
// a padding mask, block `tap` kept, the noise half of the 8 learned-sigma channels against the noise by MSE,
// backward, AdamW. Its PyTorch-eager counterpart is bench/reference/pixart_reference.py (`bench`), which first checks
// itself against the pixart_transformer_forward fixtures; bench/reference/run_pixart_bench.sh runs both in
// alternating rounds and prints the ratio.
//
// `sana`: one Sana self-attention (Sana-1.6B width: 70 heads of 32) forward + backward on the token count of a
// resolution, with Sana's ReLU linear attention or with softmax attention over the same projections: milliseconds
// and the peak resident memory the process reached (run each mode in its own process: the peak is per process).
//
// Usage: bench_pixart [--mode step|sana-linear|sana-quadratic] [--batch 4] [--latent 32] [--depth 4] [--heads 6]
//                     [--head-dim 64] [--caption 4096] [--tokens 300] [--tap 1] [--iters 5] [--warmup 1]
//                     [--pixels 1024] [--threads N]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "bench/bench_support.h"
#include "core/base/threads.h"
#include "core/models/pixart_transformer.h"
#include "core/models/sana_transformer.h"

namespace {

struct Options {
  std::string mode = "step";
  int64_t batch = 4, latent = 32, depth = 4, heads = 6, head_dim = 64, caption = 4096, tokens = 300, tap = 1;
  int64_t pixels = 1024;
  int iters = 5, warmup = 1, threads = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--mode", &o.mode)
      .value("--batch", &o.batch)
      .value("--latent", &o.latent)
      .value("--depth", &o.depth)
      .value("--heads", &o.heads)
      .value("--head-dim", &o.head_dim)
      .value("--caption", &o.caption)
      .value("--tokens", &o.tokens)
      .value("--tap", &o.tap)
      .value("--pixels", &o.pixels)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .parse(argc, argv);
  repa::bench::require_one_of("--mode", o.mode, {"step", "sana-linear", "sana-quadratic"});
  return o;
}

int pixart_step(const Options& o, int threads) {
  repa::models::PixArtTransformerConfig config;
  config.num_attention_heads = o.heads, config.attention_head_dim = o.head_dim;
  config.in_channels = 4, config.out_channels = 8, config.num_layers = o.depth;
  config.cross_attention_dim = o.heads * o.head_dim, config.caption_channels = o.caption;
  config.sample_size = o.latent, config.patch_size = 2, config.use_additional_conditions = false;
  config.interpolation_scale = std::max<int64_t>(o.latent / 64, 1);
  repa::models::PixArtTransformer model(config);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.normal_(0.0, 0.02);
  }
  model->train();
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.0));
  const auto alphas_cumprod = torch::cumprod(1 - torch::linspace(1e-4, 0.02, 1000), 0);
  const auto x0 = torch::randn({o.batch, 4, o.latent, o.latent});
  const auto context = torch::randn({o.batch, o.tokens, o.caption});
  const auto lengths = torch::randint(8, o.tokens, {o.batch}, torch::kLong);
  const auto mask = torch::arange(o.tokens).unsqueeze(0).lt(lengths.unsqueeze(1)).to(torch::kLong);
  auto step = [&] {
    const auto t = torch::randint(0, 1000, {o.batch}, torch::kLong);
    const auto eps = torch::randn_like(x0);
    const auto ab = alphas_cumprod.index_select(0, t).view({-1, 1, 1, 1});
    repa::models::PixArtInputs in;
    in.hidden_states = ab.sqrt() * x0 + (1 - ab).sqrt() * eps;
    in.timestep = t.to(torch::kFloat32);
    in.encoder_hidden_states = context;
    in.encoder_attention_mask = mask;
    const auto out = model->forward(in, o.tap);
    const auto loss = (out.prediction.narrow(1, 0, 4) - eps).pow(2).mean();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return loss.item<double>();
  };
  const auto times = repa::bench::time_steps(o.warmup, o.iters, step);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  std::printf(
      "libtorch  pixart depth %lld width %lld heads %lld latent %lldx%lld tokens %lld caption %lld batch %lld params "
      "%.2fM threads %d: median %.1f ms/step (min %.1f, max %.1f, %d iters)\n",
      static_cast<long long>(o.depth), static_cast<long long>(o.heads * o.head_dim), static_cast<long long>(o.heads),
      static_cast<long long>(o.latent), static_cast<long long>(o.latent), static_cast<long long>(o.tokens),
      static_cast<long long>(o.caption), static_cast<long long>(o.batch), params / 1e6, threads, times.median_ms(),
      times.min_ms(), times.max_ms(), o.iters);
  return 0;
}

int sana_attention(const Options& o, int threads) {
  // Sana-1.6B: 70 heads of 32 (width 2240); DC-AE compresses 32x and the patch is 1, so a side of P pixels is P/32
  // tokens.
  const int64_t heads = 70, dim_head = 32, dim = heads * dim_head, side = o.pixels / 32, n = side * side;
  repa::models::dit::AttentionOptions options;
  options.query_dim = dim, options.heads = heads, options.dim_head = dim_head;
  repa::models::dit::Attention attention(options);
  attention->train();
  const auto x = torch::randn({o.batch, n, dim}).requires_grad_(true);
  const bool linear = o.mode == "sana-linear";
  const double before = repa::bench::peak_rss_mib();
  auto step = [&] {
    const auto out = linear ? repa::models::linear_attention(*attention, x) : attention->forward(x);
    out.pow(2).mean().backward();
    return 0.0;
  };
  const auto times = repa::bench::time_steps(o.warmup, o.iters, step);
  std::printf(
      "libtorch  sana self-attention %s at %lld px (%lld tokens, width %lld, batch %lld) threads %d: median %.1f ms "
      "forward+backward (min %.1f, max %.1f, %d iters); peak RSS %.0f MiB (+%.0f MiB over the inputs)\n",
      linear ? "linear (ReLU)" : "quadratic (softmax)", static_cast<long long>(o.pixels), static_cast<long long>(n),
      static_cast<long long>(dim), static_cast<long long>(o.batch), threads, times.median_ms(), times.min_ms(),
      times.max_ms(), o.iters, repa::bench::peak_rss_mib(), repa::bench::peak_rss_mib() - before);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_pixart", [&] {
    const auto o = parse(argc, argv);
    const int threads = repa::configure_torch_threads(o.threads);
    torch::manual_seed(0);
    return o.mode == "step" ? pixart_step(o, threads) : sana_attention(o, threads);
  });
}
