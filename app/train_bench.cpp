// repa-train bench: median milliseconds per training step of the setups the studio trains, after warm-up,
// on this machine, as text or one JSON object. bench/reference/steps_reference.py times the very same steps
// in PyTorch eager and bench/run_comparison.sh runs both sides in turns and prints the ratios.
//
// Cases (--case, comma-separated; default all of the first five):
//   sit               SiT step: linear-path noising, forward (train mode), velocity MSE, backward, AdamW (the
//                     trainer's FusedAdamW)
//   sit_repa          the same + REPA (LayerNorm+Linear projector on the tapped block), teacher tokens from a
//                     cache tensor (what `repa-train run` does once `repa-train cache` has filled the cache)
//   sit_repa_teacher  the same, DINOv2 computed on every step under no_grad (what SimpleTuner does)
//   unet_urepa        UNet2DModel (class-conditional, self-attention) step + U-REPA on the mid-block
//   dinov2            the teacher's forward alone (no_grad)
//   sit_xl            SiT-XL/2 step at 256 px latents (32×32×4), meant for CUDA; prints the model-FLOP
//                     utilisation against --peak-tflops
// --profile N adds, per case, the N operators with the most self time per step (every operator timed over a
// few extra steps after the timed ones, so the timings do not carry the profiler's cost); --profile-shapes
// counts calls with different input shapes apart.
// On CUDA the SiT runs under bf16 autocast (SDPA picks the flash kernel on LibTorch 2.x) and the UNet in
// channels-last with bf16 autocast; each timed step ends with a device synchronisation.
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/bench_profile.h"
#include "app/train_commands.h"
#include "core/align/repa_regularizer.h"
#include "core/align/urepa_regularizer.h"
#include "core/base/error.h"
#include "core/base/memory.h"
#include "core/base/threads.h"
#include "core/diffusion/objective.h"
#include "core/encoders/dinov2.h"
#include "core/models/sit.h"
#include "core/models/unet_2d.h"
#include "core/train/fused_adamw.h"

namespace repa::app {
namespace {

// Keep in sync with UNET_CONFIG in bench/reference/steps_reference.py (bench_unet's "classcond").
const char* kUnetConfig = R"({"block_out_channels": [64, 128, 256],
  "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
  "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
  "layers_per_block": 1, "attention_head_dim": 32, "num_class_embeds": 10,
  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4})";

const std::vector<std::string> kDefaultCases = {"sit", "sit_repa", "sit_repa_teacher", "unet_urepa", "dinov2"};

struct BenchOptions {
  int threads = 0, iters = 10, warmup = 3, profile = 0;
  bool json = false, profile_shapes = false;
  std::string device = "cpu";
  std::vector<std::string> cases = kDefaultCases;
  int64_t batch = 8, latent = 32, channels = 4, depth = 4, width = 256, heads = 4, patch = 2, tap = 1;
  int64_t teacher_image = 224, unet_batch = 8, xl_batch = 32;
  std::string teacher_size = "s";
  double peak_tflops = 0.0;  // the card's dense bf16 peak; 0: MFU not printed
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

BenchOptions parse(const Args& args) {
  BenchOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json" || a == "--profile-shapes") {
      (a == "--json" ? o.json : o.profile_shapes) = true;
      continue;
    }
    if (i + 1 >= args.size()) throw InputError("bench: missing value after " + a);
    const std::string v = args[++i];
    try {
      if (a == "--threads") o.threads = std::stoi(v);
      else if (a == "--iters") o.iters = std::stoi(v);
      else if (a == "--warmup") o.warmup = std::stoi(v);
      else if (a == "--profile") o.profile = std::stoi(v);
      else if (a == "--device") o.device = v;
      else if (a == "--case") o.cases = split(v);
      else if (a == "--batch") o.batch = std::stoll(v);
      else if (a == "--depth") o.depth = std::stoll(v);
      else if (a == "--width") o.width = std::stoll(v);
      else if (a == "--heads") o.heads = std::stoll(v);
      else if (a == "--tap") o.tap = std::stoll(v);
      else if (a == "--teacher-image") o.teacher_image = std::stoll(v);
      else if (a == "--teacher-size") o.teacher_size = v;
      else if (a == "--unet-batch") o.unet_batch = std::stoll(v);
      else if (a == "--xl-batch") o.xl_batch = std::stoll(v);
      else if (a == "--peak-tflops") o.peak_tflops = std::stod(v);
      else throw InputError("bench: unknown option " + a);
    } catch (const std::logic_error&) {
      throw InputError("bench: " + a + " expects a number, got '" + v + "'");
    }
  }
  if (o.iters < 1 || o.warmup < 0 || o.profile < 0)
    throw InputError("bench: --iters must be >= 1, --warmup and --profile >= 0");
  if (o.device != "cpu" && o.device != "cuda") throw InputError("bench: --device is cpu or cuda, got " + o.device);
  if (o.device == "cuda" && !torch::cuda::is_available())
    throw InputError("bench: --device cuda but LibTorch sees no CUDA device");
  const std::vector<std::string> known = {"sit", "sit_repa", "sit_repa_teacher", "unet_urepa", "dinov2", "sit_xl"};
  for (const auto& c : o.cases)
    if (std::find(known.begin(), known.end(), c) == known.end())
      throw InputError("bench: unknown case '" + c + "' (sit, sit_repa, sit_repa_teacher, unet_urepa, dinov2, sit_xl)");
  if (o.teacher_image % 14) throw InputError("bench: --teacher-image must be a multiple of 14 (DINOv2 patches)");
  return o;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void synchronize(const torch::Device& device) {
  // LibTorch 1.13's C++ API has no torch::cuda::synchronize; a host copy waits for the queue.
  if (device.is_cuda()) torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
}

struct Timing {
  std::string name;
  double median = 0, min = 0, max = 0;
  nlohmann::json extra = nlohmann::json::object();
  std::vector<OperatorTime> profile;  // the top --profile operators, per step
};

Timing time_step(const std::string& name, const BenchOptions& o, const torch::Device& device,
                 const std::function<void()>& step) {
  for (int i = 0; i < o.warmup; ++i) step();
  synchronize(device);
  std::vector<double> ms;
  for (int i = 0; i < o.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.name = name;
  t.median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  t.min = ms.front(), t.max = ms.back();
  if (o.profile > 0) {
    t.profile = profile_operators([&] {
      step();
      synchronize(device);
    }, std::min(o.iters, 5), o.profile_shapes);
    if (t.profile.size() > static_cast<size_t>(o.profile)) t.profile.resize(o.profile);
  }
  return t;
}

void randomise(torch::nn::Module& module) {
  // N(0, 0.02) everywhere: the adaLN-Zero start would leave whole branches at zero and skip their work.
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.normal_(0.0, 0.02);
}

// Model FLOPs of one SiT training step (forward + backward = 3 × forward): 2 per multiply-add of every
// token-wise matmul (qkv, proj, mlp, adaLN, patch and final layers) plus the two attention matmuls.
double sit_step_flops(const models::SiTConfig& c, int64_t batch) {
  const double d = static_cast<double>(c.hidden_size), t = static_cast<double>(c.grid_size() * c.grid_size());
  const double mlp = c.mlp_ratio * d;
  const double per_token_block = 3 * d * d + d * d + 2 * d * mlp;  // multiply-adds per token
  const double attention = 2 * t * t * d;                          // q kᵀ and a v per image
  const double patch = static_cast<double>(c.in_channels * c.patch_size * c.patch_size) * d;
  const double final_layer = d * static_cast<double>(c.patch_size * c.patch_size * c.out_channels());
  const double forward = 2 * batch *
                         (c.depth * (t * per_token_block + attention) + t * (patch + final_layer) +
                          c.depth * 6 * d * d + 2 * d * d);  // adaLN linears once per image
  return 3 * forward;
}

class Bench {
 public:
  explicit Bench(const BenchOptions& o) : o_(o), device_(o.device) {}

  std::vector<Timing> run() {
    std::vector<Timing> out;
    for (const auto& c : o_.cases) {
      torch::manual_seed(0);
      if (c == "sit") out.push_back(sit(c, false, false));
      if (c == "sit_repa") out.push_back(sit(c, true, false));
      if (c == "sit_repa_teacher") out.push_back(sit(c, true, true));
      if (c == "unet_urepa") out.push_back(unet(c));
      if (c == "dinov2") out.push_back(dinov2(c));
      if (c == "sit_xl") out.push_back(sit_xl(c));
    }
    return out;
  }

 private:
  torch::TensorOptions on() const { return torch::TensorOptions().device(device_); }

  encoders::Dinov2 teacher() const {
    auto model = encoders::random_dinov2(encoders::Dinov2Config::for_size(o_.teacher_size, false), 2024);
    model->freeze();
    model->to(device_);
    return model;
  }
  torch::Tensor teacher_pixels(int64_t batch) const {
    return torch::randn({batch, 3, o_.teacher_image, o_.teacher_image}, on());
  }
  static torch::Tensor teacher_tokens(encoders::Dinov2& model, const torch::Tensor& pixels) {
    // no_grad rather than inference mode: inference tensors may not be saved for the alignment's backward.
    torch::NoGradGuard no_grad;
    return model->forward(pixels).patch_tokens;
  }

  Timing sit(const std::string& name, bool repa, bool live_teacher) {
    models::SiTConfig config;
    config.input_size = o_.latent, config.in_channels = o_.channels, config.patch_size = o_.patch;
    config.depth = o_.depth, config.hidden_size = o_.width, config.num_heads = o_.heads;
    config.num_classes = 1000, config.class_dropout_prob = 0.1;
    config.bf16_autocast = device_.is_cuda();
    return sit_step(name, config, o_.batch, repa, live_teacher);
  }

  Timing sit_step(const std::string& name, const models::SiTConfig& config, int64_t batch, bool repa,
                  bool live_teacher) {
    models::SiT model(config);
    randomise(*model);
    model->to(device_);
    model->train();
    const nlohmann::json align_config = {{"crepa_enabled", true}, {"crepa_lambda", 0.5},
                                         {"crepa_block_index", o_.tap}};
    encoders::Dinov2 encoder{nullptr};
    torch::Tensor pixels, cached;
    std::unique_ptr<align::RepaRegularizer> regularizer;
    std::vector<torch::Tensor> params = model->parameters();
    if (repa) {
      encoder = teacher();
      pixels = teacher_pixels(batch);
      cached = teacher_tokens(encoder, pixels).clone();
      regularizer = std::make_unique<align::RepaRegularizer>(align::RepaOptions::from_json(align_config, 0),
                                                             config.hidden_size,
                                                             std::vector<int64_t>{encoder->config().embed_dim});
      regularizer->to(device_);
      for (const auto& p : regularizer->parameters()) params.push_back(p);
    }
    train::FusedAdamW optimizer(params, torch::optim::AdamWOptions(1e-4).weight_decay(0.0));
    const diffusion::Objective objective(diffusion::ObjectiveKind::Linear);
    const diffusion::TimestepSampler sampler;
    const auto x0 = torch::randn({batch, config.in_channels, config.input_size, config.input_size}, on());
    const auto labels = torch::randint(0, 1000, {batch}, on().dtype(torch::kLong));
    int64_t step_index = 0;
    auto timing = time_step(name, o_, device_, [&] {
      const auto t = objective.sample_time(sampler, batch, device_);
      const auto noised = objective.noise(x0, torch::randn_like(x0), t);
      const auto out = model->forward(noised.x_t, noised.model_time, labels, repa ? o_.tap : -1);
      auto loss = torch::mse_loss(out.prediction.to(torch::kFloat32), noised.target);
      if (repa) {
        const auto tokens = live_teacher ? teacher_tokens(encoder, pixels) : cached;
        loss = loss + regularizer->compute(out.hidden, {tokens}, step_index++).loss;
      }
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    });
    int64_t n = 0;
    for (const auto& p : params) n += p.numel();
    timing.extra["params_m"] = n / 1e6;
    timing.extra["tokens"] = config.grid_size() * config.grid_size();
    if (repa) timing.extra["teacher_tokens"] = cached.size(1);
    return timing;
  }

  Timing sit_xl(const std::string& name) {
    auto config = models::SiTConfig::preset("XL", 2);
    config.input_size = 32, config.in_channels = 4, config.num_classes = 1000;
    config.bf16_autocast = device_.is_cuda();
    auto timing = sit_step(name, config, o_.xl_batch, false, false);
    const double flops = sit_step_flops(config, o_.xl_batch);
    timing.extra["batch"] = o_.xl_batch;
    timing.extra["model_tflop_per_step"] = flops / 1e12;
    timing.extra["achieved_tflops"] = flops / (timing.median * 1e-3) / 1e12;
    if (o_.peak_tflops > 0) timing.extra["mfu"] = flops / (timing.median * 1e-3) / (o_.peak_tflops * 1e12);
    return timing;
  }

  Timing unet(const std::string& name) {
    models::UNet2DModel model(models::UNet2DConfig::from_json(nlohmann::json::parse(kUnetConfig)));
    randomise(*model);
    model->to(device_);
    if (device_.is_cuda()) {
      models::UNetMemoryOptions memory;
      memory.channels_last = true, memory.autocast_bf16 = true;
      model->set_memory_options(memory);
    }
    model->train();
    auto encoder = teacher();
    const auto cached = teacher_tokens(encoder, teacher_pixels(o_.unet_batch)).clone();
    const int64_t mid_channels = model->config.block_out_channels.back();
    const nlohmann::json align_config = {{"urepa_enabled", true}, {"urepa_lambda", 0.5}};
    align::UrepaRegularizer regularizer(align::UrepaOptions::from_json(align_config, 0), mid_channels,
                                        {encoder->config().embed_dim});
    regularizer.to(device_);
    auto params = model->parameters();
    for (const auto& p : regularizer.parameters()) params.push_back(p);
    train::FusedAdamW optimizer(params, torch::optim::AdamWOptions(1e-4).weight_decay(0.0));
    const auto x0 = torch::randn({o_.unet_batch, 4, o_.latent, o_.latent}, on());
    const auto labels = torch::randint(0, 10, {o_.unet_batch}, on().dtype(torch::kLong));
    int64_t step_index = 0;
    auto timing = time_step(name, o_, device_, [&] {
      // DDPM-style epsilon objective at integer steps; the schedule's math is not what is timed here.
      const auto noise = torch::randn_like(x0);
      const auto t = torch::randint(0, 1000, {o_.unet_batch}, on().dtype(torch::kLong));
      const auto x_t = x0 * 0.7 + noise * 0.7;
      const auto out = model->forward(x_t, t, labels);
      auto loss = torch::mse_loss(out.sample.to(torch::kFloat32), noise);
      loss = loss + regularizer.compute(out.mid_block.to(torch::kFloat32), {cached}, step_index++).loss;
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    });
    int64_t n = 0;
    for (const auto& p : params) n += p.numel();
    timing.extra["params_m"] = n / 1e6;
    timing.extra["mid_tokens"] = cached.size(1);
    return timing;
  }

  Timing dinov2(const std::string& name) {
    auto encoder = teacher();
    const auto pixels = teacher_pixels(o_.batch);
    auto timing = time_step(name, o_, device_, [&] { teacher_tokens(encoder, pixels); });
    timing.extra["images_per_s"] = o_.batch / (timing.median * 1e-3);
    return timing;
  }

  const BenchOptions& o_;
  torch::Device device_;
};

}  // namespace

int bench_command(const Args& args) {
  const auto o = parse(args);
  const int threads = configure_torch_threads(o.threads);
  const auto results = Bench(o).run();

  nlohmann::json report;
  report["side"] = "libtorch";
  report["libtorch"] = TORCH_VERSION;
  report["device"] = o.device;
  if (o.device == "cuda") report["cuda_devices"] = torch::cuda::device_count();
  report["machine"] = {{"cpu", cpu_model()},
                       {"cores", std::thread::hardware_concurrency()},
                       {"load_before", load_average()}};
  report["threads"] = threads;
  report["malloc"] = keep_freed_memory();  // idempotent: reports what main() set
  report["iters"] = o.iters, report["warmup"] = o.warmup;
  report["config"] = {{"batch", o.batch},
                      {"latent", {o.channels, o.latent, o.latent}},
                      {"sit", {{"depth", o.depth}, {"width", o.width}, {"heads", o.heads}, {"patch", o.patch}}},
                      {"tap_block", o.tap},
                      {"projector", "layernorm_linear"},
                      {"teacher", "dinov2-" + o.teacher_size + "/14 random init, " + std::to_string(o.teacher_image) +
                                      " px"},
                      {"unet", nlohmann::json::parse(kUnetConfig)},
                      {"unet_batch", o.unet_batch}};
  report["results"] = nlohmann::json::object();
  const Timing* vanilla = nullptr;
  const Timing* cached = nullptr;
  const Timing* live = nullptr;
  for (const auto& r : results) {
    nlohmann::json entry = {{"median_ms", r.median}, {"min_ms", r.min}, {"max_ms", r.max}};
    entry.update(r.extra);
    for (const auto& op : r.profile)
      entry["profile"].push_back(
          {{"op", op.name}, {"self_ms", op.self_ms}, {"total_ms", op.total_ms}, {"calls", op.calls}});
    report["results"][r.name] = entry;
    if (r.name == "sit") vanilla = &r;
    if (r.name == "sit_repa") cached = &r;
    if (r.name == "sit_repa_teacher") live = &r;
  }
  if (vanilla && cached) report["ratios"]["repa_cached_over_vanilla"] = cached->median / vanilla->median;
  if (cached && live) report["ratios"]["teacher_live_over_cached"] = live->median / cached->median;
  report["machine"]["load_after"] = load_average();

  if (o.json) {
    std::printf("%s\n", report.dump().c_str());
    return 0;
  }
  std::printf("repa-train bench: libtorch %s, device %s, %d threads, %s (%u cores), load %s\n", TORCH_VERSION,
              o.device.c_str(), threads, cpu_model().c_str(), std::thread::hardware_concurrency(),
              load_average().c_str());
  for (const auto& r : results)
    std::printf("  %-18s median %9.1f ms  (min %.1f, max %.1f, %d iters)  %s\n", r.name.c_str(), r.median, r.min,
                r.max, o.iters, r.extra.dump().c_str());
  for (const auto& r : results) {
    if (r.profile.empty()) continue;
    std::printf("  %s: operators by self time per step (%.1f ms measured per step)\n", r.name.c_str(), r.median);
    for (const auto& op : r.profile)
      std::printf("    %-44s self %8.2f ms %5.1f%%  total %8.2f ms  %6.1f calls\n", op.name.c_str(), op.self_ms,
                  100.0 * op.self_ms / r.median, op.total_ms, op.calls);
  }
  if (report.contains("ratios")) std::printf("  ratios: %s\n", report["ratios"].dump().c_str());
  return 0;
}

}  // namespace repa::app
