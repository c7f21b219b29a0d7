#include "core/models/diffusers_attention.h"

#include <string>

#include "core/base/torch_compat.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/nn/cpu_attention.h"

namespace repa::models::diffusers {

AttentionImpl::AttentionImpl(const AttentionOptions& opts) : options(opts) {
  const int64_t inner = opts.heads * opts.dim_head;
  const int64_t kv_dim = opts.cross_attention_dim > 0 ? opts.cross_attention_dim : opts.query_dim;
  if (opts.norm_groups > 0) {
    group_norm = register_module("group_norm", GroupNorm(opts.norm_groups, opts.query_dim, opts.norm_eps));
  }
  to_q = register_module("to_q", Linear(opts.query_dim, inner, opts.bias));
  to_k = register_module("to_k", Linear(kv_dim, inner, opts.bias));
  to_v = register_module("to_v", Linear(kv_dim, inner, opts.bias));
  // to_out is a ModuleList [Linear, Dropout] in diffusers; only its Linear holds weights.
  auto out_list = register_module("to_out", torch::nn::ModuleList());
  to_out = Linear(inner, opts.query_dim, true);
  out_list->push_back(to_out);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const bool spatial = x.dim() == 4;
  torch::Tensor h = x;
  if (spatial) h = x.flatten(2);  // (B, C, HW)
  if (group_norm) h = spatial ? group_norm(h) : group_norm(h.transpose(1, 2)).transpose(1, 2);
  if (spatial) h = h.transpose(1, 2);  // (B, HW, C)

  const auto& kv_source = context.defined() ? context : h;
  const auto q = to_q(h), k = to_k(kv_source), v = to_v(kv_source);  // (B, S, heads·dim_head)
  torch::Tensor attended;  // (B, S, heads·dim_head) from the per-head CPU kernel or SDPA
  const bool reduced_precision = q.scalar_type() != torch::kFloat || compat::detail::cuda_autocast_enabled();
  if (options.upcast && reduced_precision) {
    compat::AutocastDisabled fp32;
    attended = nn::multi_head_attention(q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat), options.heads)
                   .to(v.scalar_type());
  } else {
    attended = nn::multi_head_attention(q, k, v, options.heads);
  }
  auto out = to_out(attended);
  if (spatial) out = out.transpose(1, 2).reshape(x.sizes());
  if (options.residual_connection) out = out + x;
  return options.rescale_output_factor == 1.0 ? out : out / options.rescale_output_factor;
}

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", Linear(dim_in, dim_out * 2));
}

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
  auto parts = proj(x).chunk(2, -1);
  return parts[0] * torch::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, double drop) : dropout(drop) {
  const int64_t inner = dim * 4;
  auto net = register_module("net", torch::nn::ModuleList());
  geglu = GEGLU(dim, inner);
  out = Linear(inner, dim);
  net->push_back(geglu);
  net->push_back(torch::nn::Dropout(drop));
  net->push_back(out);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = geglu(x);
  if (dropout > 0.0) h = torch::dropout(h, dropout, is_training());
  return out(h);
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, const TransformerOptions& opts)
    : only_cross_attention(opts.only_cross_attention) {
  AttentionOptions a;
  a.query_dim = dim;
  a.heads = opts.heads;
  a.dim_head = opts.dim_head;
  a.upcast = opts.upcast_attention;
  norm1 = register_module("norm1", LayerNorm(dim));
  AttentionOptions self = a;
  self.cross_attention_dim = opts.only_cross_attention ? opts.cross_attention_dim : 0;
  attn1 = register_module("attn1", Attention(self));
  if (opts.cross_attention_dim > 0) {
    norm2 = register_module("norm2", LayerNorm(dim));
    AttentionOptions cross = a;
    cross.cross_attention_dim = opts.cross_attention_dim;
    attn2 = register_module("attn2", Attention(cross));
  }
  norm3 = register_module("norm3", LayerNorm(dim));
  ff = register_module("ff", FeedForward(dim, opts.dropout));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  auto h = x + attn1(norm1(x), only_cross_attention ? context : torch::Tensor());
  if (attn2) h = h + attn2(norm2(h), context);
  return h + ff(norm3(h));
}

Transformer2DModelImpl::Transformer2DModelImpl(int64_t in_channels, const TransformerOptions& opts) : options(opts) {
  const int64_t inner = opts.heads * opts.dim_head;
  norm = register_module("norm", GroupNorm(opts.norm_groups, in_channels, 1e-6));
  if (opts.use_linear_projection) {
    proj_in_linear = register_module("proj_in", Linear(in_channels, inner));
  } else {
    proj_in_conv = register_module("proj_in", Conv2d(in_channels, inner, 1, 1, 0));
  }
  auto list = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < opts.num_layers; ++i) {
    blocks.push_back(BasicTransformerBlock(inner, opts));
    list->push_back(blocks.back());
  }
  if (opts.use_linear_projection) {
    proj_out_linear = register_module("proj_out", Linear(inner, in_channels));
  } else {
    proj_out_conv = register_module("proj_out", Conv2d(inner, in_channels, 1, 1, 0));
  }
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const int64_t b = x.size(0), height = x.size(2), width = x.size(3);
  auto h = norm(x);
  // (B, C, H, W) → (B, HW, C) tokens; the conv projection acts before the reshape, the linear one after.
  if (proj_in_conv) h = proj_in_conv(h);
  h = h.permute({0, 2, 3, 1}).reshape({b, height * width, h.size(1)});
  if (proj_in_linear) h = proj_in_linear(h);

  const bool checkpoint = checkpointing_active(*this, gradient_checkpointing);
  for (auto& block : blocks) {
    if (checkpoint) {
      std::vector<torch::Tensor> inputs{h};
      if (context.defined()) inputs.push_back(context);
      h = checkpointed(
          [impl = block.ptr()](const std::vector<torch::Tensor>& in) {
            return impl->forward(in[0], in.size() > 1 ? in[1] : torch::Tensor());
          },
          inputs, trainable_parameters(*block));
    } else {
      h = block->forward(h, context);
    }
  }

  if (proj_out_linear) h = proj_out_linear(h);
  h = h.reshape({b, height, width, h.size(-1)}).permute({0, 3, 1, 2});
  if (proj_out_conv) h = proj_out_conv(h);
  return h + x;
}

}  // namespace repa::models::diffusers
