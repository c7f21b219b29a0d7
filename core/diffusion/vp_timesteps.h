// How SimpleTuner picks the training timesteps and noise of its VP (DDPM) families: per-timestep weights from the
// timestep-bias options (generate_timestep_weights), one timestep per equal segment of the schedule for a batch
// (segmented_timestep_selection, the default for batches of more than one), and the noise offset / input
// perturbation of its noise settings. Flow families use flow_sigmas.h instead.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace repa::diffusion {

class VpTimestepSampler {
 public:
  // timestep_bias_strategy (none/earlier/later/range), _multiplier, _portion, _begin, _end and
  // disable_segmented_timestep_sampling; InputError naming the key as SimpleTuner refuses them.
  static VpTimestepSampler from_config(const nlohmann::json& config, int64_t num_train_timesteps = 1000);

  // (T,) fp32 weights, normalised when biased (all ones without a bias), as generate_timestep_weights returns.
  const torch::Tensor& weights() const { return weights_; }
  bool segmented() const { return segmented_; }
  // (n,) int64 timesteps from the default generator.
  torch::Tensor sample(int64_t n) const;

 private:
  torch::Tensor weights_;
  int64_t steps_ = 1000;
  bool segmented_ = true;
};

// offset_noise / noise_offset / noise_offset_probability and input_perturbation / input_perturbation_steps.
struct VpNoiseSettings {
  bool offset = false;
  double offset_strength = 0.1;
  double offset_probability = 0.25;
  double input_perturbation = 0.0;
  int64_t input_perturbation_steps = 0;

  static VpNoiseSettings from_config(const nlohmann::json& config);
  // The training noise: `noise` plus, when the offset applies to this batch (one draw), strength·N(0,1) per
  // sample and channel.
  torch::Tensor offset_noise(const torch::Tensor& noise) const;
  // The noise the model's input is made with at `step`: noise + p·N(0,1), p fading to 0 over the perturbation
  // steps when they are set; `noise` itself when there is no perturbation. The target keeps `noise`.
  torch::Tensor input_noise(const torch::Tensor& noise, int64_t step) const;
};

}  // namespace repa::diffusion
