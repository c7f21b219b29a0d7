// Multi-head attention, softmax(q kᵀ / √Dh) v, with a per-head CPU kernel: from a packed qkv projection for the
// timm-style blocks (SiT, DINOv2), or from separate q, k, v projections for the diffusers UNets.
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

// The same from separate projections (diffusers' to_q/to_k/to_v, self- or cross-attention): q (B, Sq, H·Dh), k
// and v (B, Skv, H·Dh) → (B, Sq, H·Dh). The per-head CPU path needs all three contiguous fp32 on CPU and returns
// dq, dk, dv directly; otherwise it is compat::scaled_dot_product_attention on the split heads.
torch::Tensor multi_head_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   int64_t heads);
bool separate_attention_on_cpu_path(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    int64_t heads);

}  // namespace repa::nn
