// The transformer feed-forward block: fc1 → GELU (tanh approximation) → fc2 (timm's Mlp names).
#pragma once
#include <torch/torch.h>
#include "core/nn/linear.h"

namespace repa::nn {

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden_dim, bool tanh_gelu = true);
  torch::Tensor forward(const torch::Tensor& x);

  bool tanh_gelu;
  repa::nn::Linear fc1{nullptr};
  repa::nn::Linear fc2{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace repa::nn
