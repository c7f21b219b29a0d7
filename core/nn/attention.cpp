#include "core/nn/attention.h"

#include <string>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
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
  const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
  // (B, S, 3·D) → (3, B, H, S, Dh): the layout of timm's Attention, so q, k, v split the same way.
  // unbind rather than three selects: its backward writes the three gradients into one tensor, where each
  // select's backward would fill a zero tensor of the whole qkv size and the three would then be summed.
  const auto qkv_heads =
      qkv->forward(x).reshape({batch, tokens, 3, num_heads, head_dim}).permute({2, 0, 3, 1, 4}).unbind(0);
  auto out = compat::scaled_dot_product_attention(qkv_heads[0], qkv_heads[1], qkv_heads[2]);
  return proj->forward(out.transpose(1, 2).reshape({batch, tokens, dim}));
}

}  // namespace repa::nn
