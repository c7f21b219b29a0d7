// diffusers' attention pieces: the Attention layer (to_q/to_k/to_v/to_out.0, optionally with its own
// GroupNorm and residual, as in AttnDownBlock2D and the VAE), the GEGLU feed-forward, BasicTransformerBlock
// and Transformer2DModel (GroupNorm → proj_in → transformer blocks → proj_out, plus the residual).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "core/models/diffusers_layers.h"

namespace repa::models::diffusers {

struct AttentionOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0: keys and values come from the queries' own input
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool bias = false;          // bias of to_q/to_k/to_v (to_out.0 always has one)
  bool upcast = false;        // attention scores in fp32 even under bf16/fp16
  int64_t norm_groups = 0;    // > 0: a GroupNorm named group_norm over the input channels (spatial attention)
  double norm_eps = 1e-5;
  bool residual_connection = false;
  double rescale_output_factor = 1.0;
};

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const AttentionOptions& options);
  // x is (B, S, query_dim) or, for spatial attention, (B, C, H, W); context (B, T, cross_attention_dim) or
  // undefined for self-attention.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});

  AttentionOptions options;
  GroupNorm group_norm{nullptr};
  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
};
TORCH_MODULE(Attention);

// GEGLU: proj to 2·inner, then value · gelu(gate).
struct GEGLUImpl : torch::nn::Module {
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  torch::Tensor forward(const torch::Tensor& x);
  Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

// net.0 = GEGLU(dim → 4·dim), net.1 = dropout, net.2 = Linear(4·dim → dim).
struct FeedForwardImpl : torch::nn::Module {
  FeedForwardImpl(int64_t dim, double dropout);
  torch::Tensor forward(const torch::Tensor& x);
  double dropout;
  GEGLU geglu{nullptr};
  Linear out{nullptr};
};
TORCH_MODULE(FeedForward);

struct TransformerOptions {
  int64_t heads = 8;
  int64_t dim_head = 64;
  int64_t cross_attention_dim = 0;
  int64_t num_layers = 1;
  int64_t norm_groups = 32;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
  double dropout = 0.0;
};

// Self-attention, cross-attention (when there is a cross_attention_dim), GEGLU feed-forward; pre-LayerNorm each.
struct BasicTransformerBlockImpl : torch::nn::Module {
  BasicTransformerBlockImpl(int64_t dim, const TransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  bool only_cross_attention;
  LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DModelImpl : torch::nn::Module {
  Transformer2DModelImpl(int64_t in_channels, const TransformerOptions& options);
  // x (B, C, H, W), context (B, T, D) or undefined → (B, C, H, W).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  TransformerOptions options;
  bool gradient_checkpointing = false;  // each transformer block is rerun in backward
  GroupNorm norm{nullptr};
  Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};
  Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};
  std::vector<BasicTransformerBlock> blocks;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace repa::models::diffusers
