// The layers diffusers' DiT transformers share, under diffusers' names: RMSNorm, the Attention layer
// (to_q/to_k/to_v, optional norm_q/norm_k, to_out.0) with an additive mask bias, and FeedForward
// (net.0.proj → activation → net.2). Built on the leaf layers of diffusers_layers.h, so a model can be built
// without initialising weights it is about to load.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/models/diffusers_layers.h"

namespace repa::models::dit {

// diffusers' RMSNorm: x · rsqrt(mean(x²) + eps) (statistics in fp32), then · weight (+ bias) when affine.
struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps, bool elementwise_affine = true, bool bias = false);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t dim;
  double eps;
  torch::Tensor weight, bias;  // undefined without elementwise affine / bias
};
TORCH_MODULE(RMSNorm);

// A (B, T) keep-mask (1 keep, 0 drop; any dtype) → the additive bias (1 − mask) · −10000 as (B, 1, T) in `dtype`,
// as diffusers' DiT forwards convert encoder_attention_mask / attention_mask; a 3-D tensor is already a bias and
// is returned as is. Undefined stays undefined.
torch::Tensor keep_mask_to_bias(const torch::Tensor& mask, torch::ScalarType dtype, const std::string& name);

// softmax(q kᵀ / √Dh + bias) v over heads: q (B, Sq, H·Dh), k and v (B, Skv, H·Dh), bias undefined or
// broadcastable to (B, H, Sq, Skv) (a (B, 1, Skv) mask bias is). Returns (B, Sq, H·Dh).
torch::Tensor multi_head_attention_with_bias(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                             int64_t heads, const torch::Tensor& bias);

// The qk_norm values diffusers' Attention accepts.
enum class QKNorm { None, LayerNorm, FP32LayerNorm, LayerNormAcrossHeads, RMSNorm, RMSNormAcrossHeads, L2 };
QKNorm parse_qk_norm(const std::string& value, const std::string& key);  // "" = None; InputError naming key

struct AttentionOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0: keys and values come from the queries' input (self-attention)
  int64_t heads = 8;
  int64_t kv_heads = 0;  // 0: heads
  int64_t dim_head = 64;
  bool bias = false;     // to_q / to_k / to_v
  bool out_bias = true;  // to_out.0
  QKNorm qk_norm = QKNorm::None;
  double eps = 1e-5;               // of the qk norms
  bool elementwise_affine = true;  // of the per-head qk norms
  double dropout = 0.0;            // to_out.1, in training only
  bool upcast = false;             // scores in fp32 under reduced precision
};

// diffusers' Attention with AttnProcessor2_0's computation (and SanaAttnProcessor2_0's, which is the same
// function when the qk norms act across heads).
struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const AttentionOptions& options);
  // x (B, S, query_dim); context (B, T, cross_attention_dim) or undefined; bias as multi_head_attention_with_bias.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {}, const torch::Tensor& bias = {});
  // The projections with their qk norms applied: q (B, S, H·Dh), k and v (B, T, kv_heads·Dh).
  void project(const torch::Tensor& x, const torch::Tensor& context, torch::Tensor& q, torch::Tensor& k,
               torch::Tensor& v);
  // to_out.0 and its dropout.
  torch::Tensor output(const torch::Tensor& attended);

  AttentionOptions options;
  diffusers::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  // norm_q / norm_k: one of the two kinds is registered under those names (none for None, L2, fp32_layer_norm).
  diffusers::LayerNorm layer_norm_q{nullptr}, layer_norm_k{nullptr};
  RMSNorm rms_norm_q{nullptr}, rms_norm_k{nullptr};
};
TORCH_MODULE(Attention);

// The activation_fn values of diffusers' FeedForward.
enum class FeedForwardActivation { GELU, GELUTanh, GEGLU, GEGLUApproximate, SwiGLU, LinearSiLU };
FeedForwardActivation parse_feed_forward_activation(const std::string& value, const std::string& key);

struct FeedForwardOptions {
  int64_t dim = 0;
  int64_t dim_out = 0;  // 0: dim
  double mult = 4.0;
  int64_t inner_dim = 0;  // 0: int(dim · mult)
  double dropout = 0.0;
  FeedForwardActivation activation = FeedForwardActivation::GEGLU;
  bool final_dropout = false;
  bool bias = true;
};

// net.0 = the activation with its projection `proj` (2·inner wide for the gated ones), net.1 = dropout,
// net.2 = Linear(inner → dim_out) (, net.3 = dropout with final_dropout).
struct FeedForwardImpl : torch::nn::Module {
  explicit FeedForwardImpl(const FeedForwardOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

  FeedForwardOptions options;
  diffusers::Linear proj{nullptr}, out{nullptr};
};
TORCH_MODULE(FeedForward);

}  // namespace repa::models::dit
