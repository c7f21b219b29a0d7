// Tokens per second of the text encoders' forward on CPU (eval, fp32, no grad): CLIP-L (real width and depth)
// and a T5 of T5-XXL's width (d_model 4096, 64 heads, d_ff 10240, gated GELU) cut to 2 blocks. The
// PyTorch-eager counterpart with the same sizes is bench/reference/text_reference.py (`bench`), which checks
// itself against the clip_text_forward / t5_encoder_forward fixtures first (`check`);
// bench/reference/run_text_bench.sh alternates the two sides.
//
// Usage: bench_text --model clip_l|t5_xxl_2 [--batch 4] [--tokens 77] [--iters 3] [--warmup 1] [--threads N]
//        bench_text --cache-memory [--prompts 64] [--threads N] [--tokenizer tests/fixtures/tokenizers/clip]
//          resident memory of a text-embedding cache fill with a random CLIP-L (encoders loaded, then freed)
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/base/memory.h"
#include "core/base/threads.h"
#include "core/text/clip_text_model.h"
#include "core/text/random_text_encoder.h"
#include "core/text/t5_encoder.h"
#include "core/text/text_embedding_cache.h"

namespace {

// Keep in sync with BENCH_MODELS in bench/reference/text_reference.py.
const nlohmann::json kClipL = {{"vocab_size", 49408},        {"hidden_size", 768},
                               {"intermediate_size", 3072},  {"num_hidden_layers", 12},
                               {"num_attention_heads", 12},  {"max_position_embeddings", 77},
                               {"hidden_act", "quick_gelu"}, {"eos_token_id", 2}};
const nlohmann::json kT5Xxl2 = {{"vocab_size", 32128},
                                {"d_model", 4096},
                                {"d_kv", 64},
                                {"d_ff", 10240},
                                {"num_layers", 2},
                                {"num_heads", 64},
                                {"relative_attention_num_buckets", 32},
                                {"relative_attention_max_distance", 128},
                                {"dense_act_fn", "gelu_new"},
                                {"is_gated_act", true},
                                {"layer_norm_epsilon", 1e-6}};

struct Options {
  std::string model = "clip_l";
  int64_t batch = 4, tokens = 77;
  int iters = 3, warmup = 1, threads = 0, prompts = 64;
  bool cache_memory = false;
  std::string tokenizer = "tests/fixtures/tokenizers/clip";  // vocab.json + merges.txt, from the repository root
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--model", &o.model)
      .value("--batch", &o.batch)
      .value("--tokens", &o.tokens)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .value("--prompts", &o.prompts)
      .flag("--cache-memory", &o.cache_memory)
      .value("--tokenizer", &o.tokenizer)
      .parse(argc, argv);
  repa::bench::require_one_of("--model", o.model, {"clip_l", "t5_xxl_2"});
  return o;
}

int64_t parameters_of(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

int bench_forward(const Options& o) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  std::function<void(const torch::Tensor&)> forward;
  std::shared_ptr<torch::nn::Module> module;
  int64_t tokens = o.tokens, vocab = 0;
  if (o.model == "clip_l") {
    repa::text::ClipTextModel model(repa::text::ClipTextConfig::from_json(kClipL));
    tokens = std::min<int64_t>(tokens, 77);
    vocab = 49408;
    module = model.ptr();
    forward = [model](const torch::Tensor& ids) mutable { model->forward(ids); };
  } else {
    repa::text::T5EncoderModel model(repa::text::T5EncoderConfig::from_json(kT5Xxl2));
    vocab = 32128;
    module = model.ptr();
    forward = [model](const torch::Tensor& ids) mutable { model->forward(ids); };
  }
  module->eval();
  const auto ids = torch::randint(3, vocab - 1, {o.batch, tokens}, torch::kInt64);
  const auto times = repa::bench::time_steps(o.warmup, o.iters, [&] { forward(ids); });
  const nlohmann::json out = {{"side", "libtorch"},
                              {"model", o.model},
                              {"parameters", parameters_of(*module)},
                              {"batch", o.batch},
                              {"tokens", tokens},
                              {"median_ms", times.median_ms()},
                              {"min_ms", times.min_ms()},
                              {"tokens_per_sec", static_cast<double>(o.batch * tokens) / (times.median_ms() / 1000.0)},
                              {"threads", torch::get_num_threads()},
                              {"libtorch", TORCH_VERSION}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// A random CLIP-L pipeline (tokenizer from the project's fixtures) through TextEmbeddingCache::fill: what the
// training process holds before, during and after the encoders.
int bench_cache_memory(const Options& o) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("repa-bench-text-" + std::to_string(::getpid()));
  fs::create_directories(root / "pipe" / "tokenizer");
  for (const char* name : {"vocab.json", "merges.txt"})
    fs::copy_file(fs::path(o.tokenizer) / name, root / "pipe" / "tokenizer" / name);
  repa::text::write_random_clip_text_encoder((root / "pipe" / "text_encoder").string(), kClipL, 0);
  repa::text::release_free_heap();
  std::vector<repa::text::PromptSource> prompts;
  const char* colours[] = {"red", "green", "blue", "yellow", "purple", "cyan", "white", "black"};
  const char* shapes[] = {"disc", "square", "triangle", "ring", "cross", "star", "heart", "arrow"};
  for (int i = 0; i < o.prompts; ++i)
    prompts.push_back(
        {std::string("a ") + colours[i % 8] + " " + shapes[(i / 8) % 8] + " number " + std::to_string(i), "bench"});
  const repa::text::TextEmbeddingCache cache(
      (root / "cache").string(), repa::text::TextConditioningSpec::for_family("sd1x"), (root / "pipe").string());
  const auto report = cache.fill(prompts, 16);
  const nlohmann::json out = {{"case", "text_cache_memory"},
                              {"encoder", "clip_l (random)"},
                              {"encoder_parameters", report.encoder_parameters},
                              {"prompts", report.computed},
                              {"seconds", report.seconds},
                              {"resident_before_mib", report.resident_before / 1048576.0},
                              {"resident_loaded_mib", report.resident_loaded / 1048576.0},
                              {"resident_after_mib", report.resident_after / 1048576.0},
                              {"threads", torch::get_num_threads()}};
  std::printf("%s\n", out.dump().c_str());
  fs::remove_all(root);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_text", [&] {
    const Options o = parse(argc, argv);
    repa::configure_torch_threads(o.threads);
    repa::keep_freed_memory();  // as repa-train does
    return o.cache_memory ? bench_cache_memory(o) : bench_forward(o);
  });
}
