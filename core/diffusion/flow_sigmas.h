// Flow-matching training sigmas as SimpleTuner draws them for its flow families (SD3, Flux, Chroma, AuraFlow,
// Lumina2, HiDream, Sana…): σ ∈ [0, 1] with 1 = pure noise, x_σ = (1 − σ)·x + σ·ε, target ε − x, and the
// model's timestep 1000·σ. The distribution, the shift and their precedence follow SimpleTuner's
// sample_flow_sigmas and apply_flow_schedule_shift; docs/diffusion.md tables the options.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::diffusion {

// The scheduler values the resolution-dependent shift reads (diffusers' FlowMatchEulerDiscreteScheduler
// config, scheduler/scheduler_config.json of a model folder); the defaults are Flux's.
struct FlowShiftSettings {
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 4096;
  double base_shift = 0.5;
  double max_shift = 1.15;
  int64_t patch_size = 2;
  // Reads the keys above from a scheduler_config.json object; absent keys keep the defaults.
  static FlowShiftSettings from_scheduler_config(const nlohmann::json& scheduler_config);
};

// diffusers' calculate_shift: μ linear in the image's token count between (base_seq_len, base_shift) and
// (max_seq_len, max_shift). The shift factor is exp(μ).
double flow_shift_mu(int64_t image_seq_len, const FlowShiftSettings& settings);

// σ' = s·σ / (1 + (s − 1)·σ): the SD3 paper's timestep shift (section 5.3.2).
torch::Tensor shift_sigmas(const torch::Tensor& sigmas, double shift);

enum class FlowSigmaDistribution { LogitNormal, Uniform, Beta, CubicSpline, FluxFast, CustomList };
std::string flow_distribution_name(FlowSigmaDistribution distribution);

class FlowSigmaSampler {
 public:
  // From a run config's SimpleTuner keys: flow_sigmoid_scale, flow_use_uniform_schedule,
  // flow_use_beta_schedule (+ _alpha/_beta), flow_cubic_schedule_weights, flux_fast_schedule,
  // flow_custom_timesteps + flow_timesteps_mode, flow_schedule_shift, flow_schedule_auto_shift. Conflicts
  // SimpleTuner refuses are refused by name (InputError), so are mixflow_enabled (not built) and bad values.
  static FlowSigmaSampler from_config(const nlohmann::json& config, const FlowShiftSettings& shift = {});

  FlowSigmaDistribution distribution() const { return distribution_; }

  // The shift applied to latents of spatial size height × width: flow_schedule_shift when > 0, otherwise
  // exp(μ) of the token count when flow_schedule_auto_shift, otherwise 1 (none). Custom lists and the Flux
  // fast schedule are never shifted.
  double shift_for(int64_t latent_height, int64_t latent_width) const;

  // `n` sigmas (fp32, on `device`) for a batch of latents of that spatial size, drawn from the default
  // generator. `normal_offset` is a dataset's timestep_sampling_offset, added to the logit-normal's normal.
  // `global_batch` / `local_offset` place this process's samples in a round-robin list (1 process: n, 0).
  torch::Tensor sample(int64_t n, int64_t latent_height, int64_t latent_width,
                       const torch::Device& device = torch::kCPU, double normal_offset = 0.0,
                       int64_t global_batch = -1, int64_t local_offset = 0);

  // Round-robin lists resume at completed_steps × global_batch (SimpleTuner's cursor without a saved state).
  void resume_round_robin(int64_t completed_steps, int64_t global_batch);
  int64_t round_robin_cursor() const { return cursor_; }

  // The cubic-spline density's grid (x, normalised CDF), exposed for tests and the schedule preview.
  const torch::Tensor& cubic_grid_x() const { return cubic_x_; }
  const torch::Tensor& cubic_cdf() const { return cubic_cdf_; }

 private:
  torch::Tensor draw(int64_t n, const torch::Device& device, double normal_offset);

  FlowSigmaDistribution distribution_ = FlowSigmaDistribution::LogitNormal;
  double sigmoid_scale_ = 1.0;
  double beta_alpha_ = 2.0, beta_beta_ = 2.0;
  bool cubic_uniform_ = false;       // one knot or none: a uniform density
  torch::Tensor cubic_x_, cubic_cdf_;  // (4097,) fp32
  std::vector<float> custom_sigmas_;
  bool round_robin_ = false;
  int64_t cursor_ = 0;
  double static_shift_ = 3.0;
  bool auto_shift_ = false;
  FlowShiftSettings shift_settings_;
};

// Inference sigmas of diffusers' FlowMatchEulerDiscreteScheduler (scheduler/scheduler_config.json):
// `shift`, `use_dynamic_shifting` (then exp(μ)/(exp(μ) + 1/σ − 1) with μ from the image's token count),
// `shift_terminal`; num_train_timesteps 1000.
struct FlowSchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double shift = 1.0;
  bool use_dynamic_shifting = false;
  double shift_terminal = 0.0;  // 0: none
  FlowShiftSettings dynamic;
  static FlowSchedulerConfig from_json(const nlohmann::json& scheduler_config);
};

// The n + 1 sigmas (fp64 holding diffusers' fp32 values, the last 0) that set_timesteps(n) gives. Without
// `custom` the grid is linspace(σ_max, σ_min, n) of the training sigmas (so a static shift applies to σ_min
// twice, as in diffusers); Flux's pipeline passes custom = linspace(1, 1/n, n). `mu` is required with
// dynamic shifting (flow_shift_mu of the latent's token count).
torch::Tensor flow_inference_sigmas(const FlowSchedulerConfig& config, int64_t num_steps,
                                    const std::vector<double>& custom = {}, double mu = 0.0);

// Parses flow_cubic_schedule_weights as SimpleTuner does (a JSON list, a number, or a comma/semicolon
// separated string): finite, non-negative, with a positive value when two or more knots are given.
std::vector<double> parse_cubic_weights(const nlohmann::json& value);

// SimpleTuner's PCHIP density through equally spaced knots on [0, 1], on a grid of `resolution` points:
// returns (x, cdf) with cdf normalised to end at 1.
std::pair<torch::Tensor, torch::Tensor> cubic_spline_cdf(const std::vector<double>& weights, int64_t resolution = 4097);

}  // namespace repa::diffusion
