// adaLN-Zero conditioning (DiT): a SiLU → Linear head maps the condition to shift/scale/gate chunks.
#pragma once
#include <torch/torch.h>

namespace repa::nn {

// x (B, S, D) · (1 + scale) + shift, with shift/scale (B, D) broadcast over tokens.
inline torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return torch::addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1));  // one pass over the tokens
}

// x + gate · branch, with gate (B, D) broadcast over tokens: the gated residual of an adaLN-Zero block.
inline torch::Tensor gated_residual(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& branch) {
  return torch::addcmul(x, gate.unsqueeze(1), branch);
}

// Sequential(SiLU, Linear(hidden, chunks·hidden)), so its weights are `adaLN_modulation.1.*`.
torch::nn::Sequential adaln_modulation(int64_t hidden_size, int64_t chunks);

}  // namespace repa::nn
