#include "core/nn/attention.h"

#include <string>

#include "core/base/error.h"
#include "core/nn/cpu_attention.h"
#include "core/nn/linear.h"

namespace repa::nn {

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads, bool qkv_bias) : num_heads(heads) {
  if (heads <= 0 || dim % heads != 0)
    throw InputError("attention: width " + std::to_string(dim) + " is not divisible by num_heads " +
                     std::to_string(heads));
  head_dim = dim / heads;
  qkv = register_module("qkv", repa::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", repa::nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t batch = x.size(0), tokens = x.size(1);
  // (B, S, 3·D) → (B, S, 3, H, Dh): the layout of timm's Attention, so q, k, v split the same way.
  return proj->forward(packed_self_attention(qkv->forward(x).reshape({batch, tokens, 3, num_heads, head_dim})));
}

}  // namespace repa::nn
