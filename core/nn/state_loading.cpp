#include "core/nn/state_loading.h"

#include <algorithm>

#include "core/base/error.h"

namespace repa::nn {
namespace {

bool has_prefix(const std::string& name, const std::vector<std::string>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return name.compare(0, p.size(), p) == 0; });
}

std::string join_limited(const std::vector<std::string>& names, std::size_t max_names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < max_names; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max_names) out += " … and " + std::to_string(names.size() - max_names) + " more";
  return out;
}

}  // namespace

std::string StateMismatch::describe(std::size_t max_names) const {
  std::string out;
  if (!missing.empty())
    out += "missing (" + std::to_string(missing.size()) + "): " + join_limited(missing, max_names) + "\n";
  if (!unexpected.empty())
    out += "unexpected (" + std::to_string(unexpected.size()) + "): " + join_limited(unexpected, max_names) + "\n";
  if (!wrong_shape.empty())
    out += "wrong shape (" + std::to_string(wrong_shape.size()) + "): " + join_limited(wrong_shape, max_names) + "\n";
  return out;
}

std::map<std::string, torch::Tensor> module_state(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& item : module.named_parameters(true)) state[item.key()] = item.value();
  for (const auto& item : module.named_buffers(true)) state[item.key()] = item.value();
  return state;
}

StateMismatch compare_state(const torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                            const StateLoadOptions& options) {
  StateMismatch mismatch;
  const auto state = module_state(module);
  for (const auto& [name, value] : state) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (std::find(options.optional_missing.begin(), options.optional_missing.end(), name) ==
          options.optional_missing.end())
        mismatch.missing.push_back(name);
    } else if (it->second.sizes() != value.sizes()) {
      mismatch.wrong_shape.push_back(name + ": checkpoint " + c10::str(it->second.sizes()) + " vs model " +
                                     c10::str(value.sizes()));
    }
  }
  for (const auto& item : tensors)
    if (!state.count(item.first) && !has_prefix(item.first, options.ignore_unexpected_prefixes))
      mismatch.unexpected.push_back(item.first);
  return mismatch;
}

void load_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                const std::string& origin, const StateLoadOptions& options) {
  const auto mismatch = compare_state(module, tensors, options);
  if (!mismatch.empty())
    throw InputError("checkpoint " + origin + " does not match the model:\n" + mismatch.describe());
  torch::NoGradGuard no_grad;
  for (auto& [name, destination] : module_state(module)) {
    const auto it = tensors.find(name);
    if (it != tensors.end()) destination.copy_(it->second.to(destination.device(), destination.scalar_type()));
  }
}

}  // namespace repa::nn
