// Self-attention from a packed qkv projection, softmax(q kᵀ / √Dh) v, for the timm-style blocks (SiT, DINOv2).
#pragma once
#include <torch/torch.h>

namespace repa::nn {

// qkv: the output of the qkv Linear viewed as (B, S, 3, H, Dh); returns (B, S, H·Dh), heads side by side.
//
// On CPU in fp32, when there are at least as many (image, head) pairs as threads, this runs one task per pair:
// two GEMMs on strided views of qkv (no q/k/v copies), the softmax while the S×S block is in cache, the output
// written straight into (B, S, H·Dh) (no transpose copy), and a backward that writes dq, dk, dv into one packed
// gradient shaped like qkv (no stacking). Elsewhere (CUDA, other dtypes, few heads, double backward) it is the
// generic path through compat::scaled_dot_product_attention.
torch::Tensor packed_self_attention(const torch::Tensor& qkv);

// Whether packed_self_attention takes the per-head CPU path for this input.
bool packed_attention_on_cpu_path(const torch::Tensor& qkv);

}  // namespace repa::nn
