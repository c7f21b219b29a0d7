// What one Flux-dev training step keeps in memory, measured on a reduced-depth model at the real width (24 heads of
// 128, T5 4096, CLIP 768, guidance embedding) and projected to the full model at a given resolution.
//
// Measured (fp32, CPU): the parameters of one double and one single block and of the rest of the model, counted;
// and the bytes each block's forward keeps for backward (weights trainable, so every Linear keeps its input, as
// LoRA on every projection needs), read from the allocator (glibc mallinfo2: bytes in use after the forward with
// its graph, minus before, minus the outputs) at two token counts, which gives a linear and a quadratic
// (attention-probability) term per block.
//
// Projected: a LoRA step (bf16 frozen base, rank-r adapters on every block Linear with fp32 AdamW state, gradient
// checkpointing per block, flash attention so no quadratic term, activations in bf16 at half the fp32 bytes):
// base weights + adapters and their optimizer state + the block inputs checkpointing keeps + one block's
// activations during its recompute + the output and loss tensors.
//
// Usage: bench_flux_memory [--pixels 1024] [--text 512] [--rank 16] [--batch 1] [--tokens-a 192] [--tokens-b 384]
//                          [--threads N]
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "bench/bench_support.h"
#include "core/models/flux_transformer.h"

namespace {

struct Options {
  int64_t pixels = 1024, text = 512, rank = 16, batch = 1, tokens_a = 192, tokens_b = 384;
  int threads = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--pixels", &o.pixels)
      .value("--text", &o.text)
      .value("--rank", &o.rank)
      .value("--batch", &o.batch)
      .value("--tokens-a", &o.tokens_a)
      .value("--tokens-b", &o.tokens_b)
      .value("--threads", &o.threads)
      .parse(argc, argv);
  return o;
}

double in_use() {
  const auto info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

int64_t count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// LoRA parameters of rank r on every Linear of a module: r·(in + out) each.
int64_t lora_count(torch::nn::Module& m, int64_t rank) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters())
    if (p.value().dim() == 2) n += rank * (p.value().size(0) + p.value().size(1));
  return n;
}

double gib(double bytes) {
  return bytes / (1024.0 * 1024.0 * 1024.0);
}

struct Kept {
  double double_block = 0, single_block = 0;  // bytes kept for backward, fp32
};

// One block forward each with graph at `image` image tokens and `text` text tokens (batch 1).
Kept measure(repa::models::FluxTransformer& model, int64_t image, int64_t text) {
  const int64_t d = model->config.inner_dim();
  const auto ids = torch::cat(
      {torch::zeros({text, 3}),
       torch::stack({torch::zeros({image}), torch::arange(image, torch::kFloat32), torch::zeros({image})}, 1)});
  const auto rotary = repa::models::mmdit::rotary_embedding(ids, model->config.axes_dims_rope, 10000.0);
  const auto temb = torch::randn({1, d});
  Kept kept;
  {
    const auto x = torch::randn({1, image, d}), c = torch::randn({1, text, d});
    const double before = in_use();
    auto [context, hidden] = model->transformer_blocks[0]->forward(x, c, temb, temb, rotary);
    kept.double_block = in_use() - before - 4.0 * static_cast<double>(context.numel() + hidden.numel());
  }
  {
    const auto h = torch::randn({1, text + image, d});
    const double before = in_use();
    auto out = model->single_transformer_blocks[0]->forward(h, temb, rotary);
    kept.single_block = in_use() - before - 4.0 * static_cast<double>(out.numel());
  }
  return kept;
}

int run(const Options& o) {
  if (o.threads > 0) torch::set_num_threads(o.threads);
  repa::models::FluxTransformerConfig config;  // FLUX.1-dev's widths
  config.guidance_embeds = true;
  config.num_layers = 1;
  config.num_single_layers = 1;
  torch::manual_seed(0);
  repa::models::FluxTransformer model(config);
  const int64_t p_double = count(*model->transformer_blocks[0]), p_single = count(*model->single_transformer_blocks[0]);
  const int64_t p_rest = count(*model) - p_double - p_single;
  const int64_t full = 19, full_single = 38;
  const double p_total = static_cast<double>(p_rest + full * p_double + full_single * p_single);
  const double lora = static_cast<double>(full * lora_count(*model->transformer_blocks[0], o.rank) +
                                          full_single * lora_count(*model->single_transformer_blocks[0], o.rank));

  const int64_t t = 64;  // text tokens of the measurement; both streams scale alike
  const auto a = measure(model, o.tokens_a, t), b = measure(model, o.tokens_b, t);
  const double sa = static_cast<double>(o.tokens_a + t), sb = static_cast<double>(o.tokens_b + t);
  // kept(S) = lin·S + quad·S² per block, solved from the two measurements.
  auto fit = [&](double ka, double kb) {
    const double quad = (kb / sb - ka / sa) / (sb - sa);
    return std::pair<double, double>{ka / sa - quad * sa, quad};
  };
  const auto [d_lin, d_quad] = fit(a.double_block, b.double_block);
  const auto [s_lin, s_quad] = fit(a.single_block, b.single_block);

  const int64_t latent = o.pixels / 8, image = (latent / 2) * (latent / 2);
  const double s = static_cast<double>(image + o.text), batch = static_cast<double>(o.batch);
  const double dim = static_cast<double>(config.inner_dim());
  const double base = 2.0 * p_total;                                        // bf16 frozen base
  const double adapters = 16.0 * lora;                                      // fp32 weight, gradient, two AdamW moments
  const double checkpoints = batch * (full + full_single) * s * dim * 2.0;  // each block's input, bf16
  const double recompute = batch * std::max(d_lin, s_lin) * s / 2.0;        // one block's activations, bf16
  const double total = base + adapters + checkpoints + recompute;

  std::printf(
      "measured per block (fp32, kept for backward): double %.0f B/token + %.3f B/token^2, single %.0f "
      "B/token + %.3f B/token^2 (from %lld and %lld tokens)\n",
      d_lin, d_quad, s_lin, s_quad, static_cast<long long>(sa), static_cast<long long>(sb));
  std::printf(
      "parameters: double block %.1f M, single block %.1f M, rest %.1f M, full FLUX.1-dev %.2f B; LoRA "
      "rank %lld on every block Linear: %.1f M\n",
      p_double / 1e6, p_single / 1e6, p_rest / 1e6, p_total / 1e9, static_cast<long long>(o.rank), lora / 1e6);
  std::printf("%lld px, batch %lld: %lld image + %lld text tokens\n", static_cast<long long>(o.pixels),
              static_cast<long long>(o.batch), static_cast<long long>(image), static_cast<long long>(o.text));
  std::printf("  base weights bf16        %7.2f GiB\n", gib(base));
  std::printf("  LoRA + AdamW fp32        %7.2f GiB\n", gib(adapters));
  std::printf("  checkpointed inputs bf16 %7.2f GiB (57 blocks)\n", gib(checkpoints));
  std::printf("  one block recomputed     %7.2f GiB\n", gib(recompute));
  std::printf("  total                    %7.2f GiB (without checkpointing the activations would be %.1f GiB)\n",
              gib(total), gib(batch * (full * d_lin + full_single * s_lin) * s / 2.0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_flux_memory", [&] { return run(parse(argc, argv)); });
}
