// Forward + backward time of the REPA and U-REPA regularizers (projector, token alignment, losses) at the
// REPA paper's SiT-XL shapes: B=32, 256 model tokens of width 1152, DINOv2-B teacher width 768, with a
// 256-token teacher (224 px) and a 1369-token teacher (518 px). Prints one JSON object per case: median and
// min milliseconds over the timed iterations, after warm-up.
//
// Usage: bench_align [--batch 32] [--tokens 256] [--hidden 1152] [--teacher-dim 768] [--teacher-tokens 256,1369]
//                    [--projector layernorm_linear|mlp|conv] [--iters 10] [--warmup 2] [--threads N]
//                    [--device cpu|cuda]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/align/repa_regularizer.h"
#include "core/align/urepa_regularizer.h"
#include "core/base/threads.h"

namespace {

struct Options {
  int64_t batch = 32, tokens = 256, hidden = 1152, teacher_dim = 768;
  std::vector<int64_t> teacher_tokens = {256, 1369};
  std::string projector = "layernorm_linear";
  int iters = 10, warmup = 2, threads = 0;
  std::string device = "cpu";
};

Options parse(int argc, char** argv) {
  Options o;
  repa::bench::Options()
      .value("--batch", &o.batch)
      .value("--tokens", &o.tokens)
      .value("--hidden", &o.hidden)
      .value("--teacher-dim", &o.teacher_dim)
      .value("--teacher-tokens", &o.teacher_tokens)
      .value("--projector", &o.projector)
      .value("--iters", &o.iters)
      .value("--warmup", &o.warmup)
      .value("--threads", &o.threads)
      .value("--device", &o.device)
      .parse(argc, argv);
  return o;
}

void synchronize(const torch::Device& device) {
  // A tiny host copy waits for every queued kernel on the device, without needing the CUDA headers.
  if (device.is_cuda()) torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
}

// Each measured step's milliseconds, the device synchronized before the step and, inside the time, after it; the step
// gets its round's index (bench_support's time_steps does neither).
template <typename Step>
std::vector<double> time_device_steps(const Options& o, const torch::Device& device, Step step) {
  std::vector<double> ms;
  for (int i = 0; i < o.warmup + o.iters; ++i) {
    synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    step(i);
    synchronize(device);
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= o.warmup) ms.push_back(elapsed);
  }
  return ms;
}

void report(const char* loss, const Options& o, int64_t teacher_tokens, const std::string& device, int threads,
            std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  std::printf(
      "{\"bench\": \"align\", \"loss\": \"%s\", \"projector\": \"%s\", \"batch\": %lld, \"tokens\": %lld, "
      "\"hidden\": %lld, \"teacher_tokens\": %lld, \"teacher_dim\": %lld, \"device\": \"%s\", \"threads\": %d, "
      "\"iters\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f}\n",
      loss, o.projector.c_str(), static_cast<long long>(o.batch), static_cast<long long>(o.tokens),
      static_cast<long long>(o.hidden), static_cast<long long>(teacher_tokens), static_cast<long long>(o.teacher_dim),
      device.c_str(), threads, o.iters, median, ms.front());
  std::fflush(stdout);
}

int run(const Options& o) {
  using namespace repa::align;
  const int threads = repa::configure_torch_threads(o.threads);
  const torch::Device device(o.device);
  torch::manual_seed(0);
  const auto on = torch::TensorOptions().device(device);
  const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(o.tokens))));
  if (side * side != o.tokens)
    throw std::runtime_error("--tokens must be a square (the U-REPA mid-block is side x side)");
  const nlohmann::json config = {
      {"crepa_enabled", true}, {"urepa_enabled", true}, {"studio", {{"projector", o.projector}}}};
  std::printf("# bench_align: libtorch %s, %d threads, device %s, %d warm-up + %d timed steps (forward + backward)\n",
              TORCH_VERSION, threads, o.device.c_str(), o.warmup, o.iters);

  for (const int64_t n_teacher : o.teacher_tokens) {
    const auto teacher = torch::nn::functional::normalize(torch::randn({o.batch, n_teacher, o.teacher_dim}, on),
                                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
    {
      RepaRegularizer repa(RepaOptions::from_json(config, 0), o.hidden, {o.teacher_dim});
      repa.to(device);
      const auto hidden = torch::randn({o.batch, o.tokens, o.hidden}, on).requires_grad_(true);
      report("repa", o, n_teacher, o.device, threads, time_device_steps(o, device, [&](int i) {
               auto out = repa.compute(hidden, {teacher}, 100 + i, TokenGrid{side, side});
               out.loss.backward();
             }));
    }
    {
      UrepaRegularizer urepa(UrepaOptions::from_json(config, 0), o.hidden, {o.teacher_dim});
      urepa.to(device);
      const auto mid = torch::randn({o.batch, o.hidden, side, side}, on).requires_grad_(true);
      report("urepa", o, n_teacher, o.device, threads, time_device_steps(o, device, [&](int i) {
               auto out = urepa.compute(mid, {teacher}, 100 + i);
               out.loss.backward();
             }));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return repa::bench::run_main("bench_align", [&] { return run(parse(argc, argv)); });
}
