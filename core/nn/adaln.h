// adaLN-Zero conditioning (DiT): a SiLU → Linear head maps the condition to shift/scale/gate chunks.
#pragma once
#include <torch/torch.h>

namespace repa::nn {

// x (B, S, D) · (1 + scale) + shift, with shift/scale (B, D) broadcast over tokens.
inline torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

// Sequential(SiLU, Linear(hidden, chunks·hidden)), so its weights are `adaLN_modulation.1.*`.
torch::nn::Sequential adaln_modulation(int64_t hidden_size, int64_t chunks);

}  // namespace repa::nn
