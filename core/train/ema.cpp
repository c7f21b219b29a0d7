#include "core/train/ema.h"

#include "core/base/error.h"

namespace repa::train {

io::NamedTensors module_state(torch::nn::Module& module) {
  io::NamedTensors out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

void load_module_state(torch::nn::Module& module, const io::SafetensorsFile& file, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : module_state(module)) {
    const std::string key = prefix + name;
    if (!file.contains(key)) throw InputError("checkpoint '" + file.path() + "' has no tensor '" + key + "'");
    const auto value = file.tensor(key);
    if (value.sizes() != tensor.sizes())
      throw InputError("checkpoint '" + file.path() + "': tensor '" + key + "' has shape " +
                       c10::str(value.sizes()) + ", the model expects " + c10::str(tensor.sizes()));
    tensor.copy_(value);
  }
}

ExponentialMovingAverage::ExponentialMovingAverage(torch::nn::Module& module, double decay) : decay_(decay) {
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : module_state(module)) {
    names_.push_back(name);
    shadow_.push_back(tensor.detach().clone());
  }
}

void ExponentialMovingAverage::update(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  const auto current = module_state(module);
  for (std::size_t i = 0; i < shadow_.size(); ++i) {
    const auto& value = current[i].second;
    if (value.is_floating_point())
      shadow_[i].mul_(decay_).add_(value.detach(), 1.0 - decay_);
    else
      shadow_[i].copy_(value);
  }
}

void ExponentialMovingAverage::swap_into(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto current = module_state(module);
  for (std::size_t i = 0; i < shadow_.size(); ++i) {
    auto held = current[i].second.detach().clone();
    current[i].second.copy_(shadow_[i]);
    shadow_[i] = held;
  }
}

io::NamedTensors ExponentialMovingAverage::named_tensors() const {
  io::NamedTensors out;
  for (std::size_t i = 0; i < shadow_.size(); ++i) out.emplace_back(names_[i], shadow_[i]);
  return out;
}

void ExponentialMovingAverage::load(const io::SafetensorsFile& file) {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < shadow_.size(); ++i) {
    if (!file.contains(names_[i]))
      throw InputError("EMA checkpoint '" + file.path() + "' has no tensor '" + names_[i] + "'");
    shadow_[i].copy_(file.tensor(names_[i]));
  }
}

}  // namespace repa::train
