// Multi-head self-attention with one fused qkv projection (timm's Attention, as DiT/SiT/REPA use it).
#pragma once
#include <torch/torch.h>
#include "core/nn/linear.h"

namespace repa::nn {

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias = true);

  // x (B, S, D) → (B, S, D) through nn::packed_self_attention (the per-head CPU kernel or SDPA).
  torch::Tensor forward(const torch::Tensor& x);

  int64_t num_heads;
  int64_t head_dim;
  repa::nn::Linear qkv{nullptr};
  repa::nn::Linear proj{nullptr};
};
TORCH_MODULE(Attention);

}  // namespace repa::nn
