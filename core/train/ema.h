// An exponential moving average of a module's parameters (and buffers), the weights samples are drawn from:
// shadow ← decay · shadow + (1 − decay) · θ after each optimizer step.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace repa::train {

class ExponentialMovingAverage {
 public:
  ExponentialMovingAverage(torch::nn::Module& module, double decay);

  void update(torch::nn::Module& module);
  // Swaps the averaged weights into `module` (and back on the second call): sampling uses the average.
  void swap_into(torch::nn::Module& module);

  double decay() const { return decay_; }
  io::NamedTensors named_tensors() const;                    // under the module's parameter names
  void load(const io::SafetensorsFile& file);                // throws InputError on a missing tensor

 private:
  double decay_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadow_;
};

// The parameters and buffers of a module by name (what checkpoints store).
io::NamedTensors module_state(torch::nn::Module& module);
// Copies every tensor of `module` from `file` (under `prefix`), naming any missing or mis-shaped tensor.
void load_module_state(torch::nn::Module& module, const io::SafetensorsFile& file, const std::string& prefix = "");

}  // namespace repa::train
