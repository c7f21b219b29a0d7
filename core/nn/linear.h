// torch::nn::Linear with the forward of ATen's linear. The C++ frontend's Linear::forward runs a matmul and then
// adds the bias in a separate pass for (B, S, D) inputs; at::linear folds contiguous 3-D inputs into one addmm
// with the bias fused, as PyTorch's F.linear does. Same parameters, names and initialisation.
#pragma once
#include <torch/torch.h>
#include "core/nn/linear.h"

namespace repa::nn {

class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x) { return at::linear(x, weight, bias); }
};
TORCH_MODULE(Linear);

}  // namespace repa::nn
