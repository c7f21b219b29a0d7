// torch::nn::Linear with the forward of ATen's linear. The C++ frontend's Linear::forward runs a matmul and then
// adds the bias in a separate pass for (B, S, D) inputs; at::linear folds contiguous 3-D inputs into one addmm
// with the bias fused, as PyTorch's F.linear does. Same parameters, names and initialisation.
#pragma once
#include <torch/torch.h>
#include <memory>

#include "core/nn/layer_adapter.h"

namespace repa::nn {

class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = at::linear(x, weight, bias);
    return adapter ? adapter->apply(x, y) : y;
  }
  std::shared_ptr<LayerAdapter> adapter;  // set by repa::adapters (LoRA); null: the plain layer
};
TORCH_MODULE(Linear);

}  // namespace repa::nn
