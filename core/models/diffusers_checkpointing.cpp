#include "core/models/diffusers_checkpointing.h"

#include "core/base/torch_compat.h"
#include "core/models/diffusers_layers.h"

namespace repa::models::diffusers {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs to rerun the block; kept in the autograd context as a capsule.
struct Recompute : torch::CustomClassHolder {
  CheckpointedBlock block;
  std::size_t num_inputs = 0;
  std::vector<bool> input_needs_grad;
  std::vector<torch::Tensor> parameters;  // the module's own tensors: the rerun graph uses exactly these
  bool autocast = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static torch::Tensor forward(AutogradContext* ctx, c10::intrusive_ptr<Recompute> recompute,
                               at::TensorList tensors) {
    std::vector<torch::Tensor> inputs(tensors.begin(), tensors.begin() + recompute->num_inputs);
    ctx->save_for_backward(inputs);
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    return recompute->block(inputs);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto recompute = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    const auto saved = ctx->get_saved_variables();
    std::vector<torch::Tensor> inputs;
    std::vector<torch::Tensor> targets;
    for (std::size_t i = 0; i < saved.size(); ++i) {
      auto leaf = saved[i].detach();
      if (recompute->input_needs_grad[i]) {
        leaf.requires_grad_(true);
        targets.push_back(leaf);
      }
      inputs.push_back(leaf);
    }
    targets.insert(targets.end(), recompute->parameters.begin(), recompute->parameters.end());

    torch::Tensor output;
    {
      torch::AutoGradMode grad_on(true);
      compat::AutocastScope autocast(recompute->autocast, recompute->autocast_dtype);
      output = recompute->block(inputs);
    }
    variable_list grads;
    if (!targets.empty() && output.requires_grad()) {
      grads = torch::autograd::grad({output}, targets, {grad_outputs[0]}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    } else {
      grads.resize(targets.size());
    }

    // One gradient per forward argument: the capsule, each input, each parameter.
    variable_list result{torch::Tensor()};
    std::size_t next = 0;
    for (std::size_t i = 0; i < recompute->num_inputs; ++i) {
      result.push_back(recompute->input_needs_grad[i] ? grads[next++] : torch::Tensor());
    }
    for (std::size_t i = 0; i < recompute->parameters.size(); ++i) result.push_back(grads[next++]);
    return result;
  }
};

}  // namespace

torch::Tensor checkpointed(const CheckpointedBlock& block, const std::vector<torch::Tensor>& inputs,
                           const std::vector<torch::Tensor>& parameters) {
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->block = block;
  recompute->num_inputs = inputs.size();
  for (const auto& t : inputs) recompute->input_needs_grad.push_back(t.requires_grad());
  recompute->parameters = parameters;
  recompute->autocast = compat::detail::cuda_autocast_enabled();
  recompute->autocast_dtype = compat::detail::cuda_autocast_dtype();
  std::vector<torch::Tensor> all(inputs);
  all.insert(all.end(), parameters.begin(), parameters.end());
  return CheckpointFunction::apply(recompute, at::TensorList(all));
}

bool checkpointing_active(const torch::nn::Module& module, bool requested) {
  return requested && module.is_training() && torch::GradMode::is_enabled();
}

std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  // Adapters are not children of the layers they hook into, yet the block's rerun reads them: without them here a
  // LoRA inside a checkpointed block would get no gradient.
  for (const auto& layer : module.modules(/*include_self=*/true)) {
    const auto adapted = adaptable_layer(*layer);
    if (adapted.slot == nullptr) continue;
    if (const auto* adapter = dynamic_cast<const torch::nn::Module*>(adapted.slot->get())) {
      for (const auto& p : adapter->parameters()) {
        if (p.requires_grad()) out.push_back(p);
      }
    }
  }
  return out;
}

}  // namespace repa::models::diffusers
