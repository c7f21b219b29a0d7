#include "core/adapters/lora_model.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/models/diffusers_layers.h"

namespace repa::adapters {

using repa::models::diffusers::adaptable_layer;

std::vector<std::string> adaptable_modules(torch::nn::Module& model) {
  std::vector<std::string> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (adaptable_layer(*item.value()).slot != nullptr) out.push_back(item.key());
  }
  return out;
}

LoraModel::LoraModel(torch::nn::Module& model, const LoraSettings& settings, TargetSpec targets)
    : settings_(settings), targets_(std::move(targets)) {
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const auto& path = item.key();
    if (!matches_target(path, targets_)) continue;
    auto& module = *item.value();
    const auto view = adaptable_layer(module);
    if (view.slot == nullptr) {
      throw InputError("LoRA target matches module '" + path + "' (" + module.name() +
                       "), which cannot carry a LoRA: only Linear and Conv2d layers can; name its layers instead");
    }
    if (*view.slot) throw InputError("LoRA: module '" + path + "' already carries an adapter");
    Hooked h;
    h.path = path;
    h.layer = LoraLayer(&module, view.weight, view.bias, settings_, view.stride, view.padding);
    h.slot = view.slot;
    h.weight = view.weight;
    *view.slot = h.layer.ptr();
    hooked_.push_back(std::move(h));
  }
  if (hooked_.empty()) {
    const auto existing = adaptable_modules(model);
    std::string sample;
    for (std::size_t i = 0; i < existing.size() && i < 8; ++i) sample += (i ? ", " : "") + existing[i];
    if (existing.size() > 8) sample += ", ... (" + std::to_string(existing.size()) + " in all)";
    std::string wanted = targets_.is_regex ? "regex '" + targets_.regex + "'" : std::string();
    for (const auto& n : targets_.names) wanted += (wanted.empty() ? "" : ", ") + n;
    throw InputError("LoRA targets (" + wanted + ") match no module of the model; layers that exist: " + sample);
  }
  for (const auto& h : hooked_) {
    paths_.push_back(h.path);
    std::string name = h.path;
    std::replace(name.begin(), name.end(), '.', '_');
    if (holder_->named_children().contains(name)) throw InputError("LoRA: two adapted modules map to '" + name + "'");
    holder_->register_module(name, h.layer);
  }
  std::sort(paths_.begin(), paths_.end());
}

LoraModel::~LoraModel() {
  detach();
}

void LoraModel::detach() {
  for (auto& h : hooked_) {
    if (h.slot && *h.slot == h.layer.ptr()) h.slot->reset();
    h.slot = nullptr;
  }
}

LoraLayer LoraModel::layer(const std::string& path) const {
  for (const auto& h : hooked_) {
    if (h.path == path) return h.layer;
  }
  throw InputError("LoRA: module '" + path + "' carries no adapter");
}

std::vector<std::pair<std::string, torch::Tensor>> LoraModel::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& h : hooked_) {
    out.emplace_back(h.path + ".lora_A.weight", h.layer->lora_A);
    out.emplace_back(h.path + ".lora_B.weight", h.layer->lora_B);
    if (h.layer->magnitude.defined()) out.emplace_back(h.path + ".lora_magnitude_vector", h.layer->magnitude);
  }
  return out;
}

std::vector<torch::Tensor> LoraModel::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& item : named_parameters()) out.push_back(item.second);
  return out;
}

int64_t LoraModel::parameter_count() const {
  int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

void LoraModel::set_alpha(double alpha) {
  settings_.alpha = alpha;
  for (auto& h : hooked_) h.layer->set_alpha(alpha);
}

void LoraModel::merge_into_base() {
  torch::NoGradGuard no_grad;
  for (auto& h : hooked_) {
    if (h.slot == nullptr) throw Error("LoRA: merge after the adapters were detached");
    h.weight.copy_(h.layer->merged_weight());
  }
  detach();
}

}  // namespace repa::adapters
