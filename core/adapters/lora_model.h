// A LoRA attached to a model: every Linear / Conv2d whose module path matches the targets gets a LoraLayer
// hooked into its forward (core/nn/layer_adapter.h). The base parameters are untouched and keep their names;
// the adapters live here, by module path, and leave the model when this object is destroyed or merged.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/adapters/lora_layer.h"
#include "core/adapters/lora_targets.h"

namespace repa::adapters {

class LoraModel {
 public:
  // InputError when no module matches (naming a few module paths that exist), or when a matched module is not a
  // layer that can carry a LoRA (peft refuses those too).
  LoraModel(torch::nn::Module& model, const LoraSettings& settings, TargetSpec targets);
  ~LoraModel();
  LoraModel(const LoraModel&) = delete;
  LoraModel& operator=(const LoraModel&) = delete;

  const std::vector<std::string>& adapted_modules() const { return paths_; }  // sorted
  LoraLayer layer(const std::string& path) const;                             // InputError when not adapted
  const LoraSettings& settings() const { return settings_; }
  const TargetSpec& targets() const { return targets_; }

  // peft's names without the adapter name: "<path>.lora_A.weight", "<path>.lora_B.weight",
  // "<path>.lora_magnitude_vector", in module order.
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;
  std::vector<torch::Tensor> parameters() const;
  int64_t parameter_count() const;

  // The adapters as one module (children named by module path with "." → "_"), for module-wide tools such as the EMA.
  torch::nn::Module& module() { return *holder_; }

  // Sets alpha for every layer (and the settings the saved header reports).
  void set_alpha(double alpha);

  // Writes each adapted layer's merged weight into the base and removes the adapters.
  void merge_into_base();
  // Removes the hooks (the base computes what it computed before).
  void detach();

 private:
  struct Hooked {
    std::string path;
    LoraLayer layer{nullptr};
    std::shared_ptr<repa::nn::LayerAdapter>* slot = nullptr;  // the layer's adapter member
    torch::Tensor weight;                                     // the base weight (merge target)
  };
  LoraSettings settings_;
  TargetSpec targets_;
  std::vector<Hooked> hooked_;
  std::vector<std::string> paths_;
  std::shared_ptr<torch::nn::Module> holder_ = std::make_shared<torch::nn::Module>("LoraAdapters");
};

// The module paths of `model` that are layers a LoRA can wrap (Linear, Conv2d), in module order.
std::vector<std::string> adaptable_modules(torch::nn::Module& model);

}  // namespace repa::adapters
