// The layers the MMDiT-style transformers (SD3, Flux, Chroma) share, under diffusers' names: adaLN-Zero and
// adaLN-Continuous modulation heads, the joint text-image attention (JointAttnProcessor2_0 / FluxAttnProcessor),
// Flux's multi-axis rotary embedding, and the timestep (+ guidance) + pooled-text conditioning embedding.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/models/diffusers_layers.h"
#include "core/models/dit_embeddings.h"
#include "core/models/dit_layers.h"

namespace repa::models::mmdit {

// layer_norm(x) (no affine) · (1 + scale) + shift, with shift/scale (B, D) broadcast over tokens.
torch::Tensor norm_modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                            double eps = 1e-6);

// AdaLayerNormZero / AdaLayerNormZeroSingle / SD35AdaLayerNormZeroX: linear(silu(emb)) cut into `chunks` (6, 3 or
// 9) modulation vectors (B, D) in diffusers' order (shift_msa, scale_msa, gate_msa, shift_mlp, ...). The
// non-affine LayerNorm the blocks apply has no parameters, so only `linear` is registered.
struct AdaLayerNormZeroImpl : torch::nn::Module {
  AdaLayerNormZeroImpl(int64_t dim, int64_t chunks, bool bias = true);
  std::vector<torch::Tensor> forward(const torch::Tensor& emb);
  int64_t chunks;
  diffusers::Linear linear{nullptr};
};
TORCH_MODULE(AdaLayerNormZero);

// AdaLayerNormContinuous (layer_norm, no affine): x normed · (1 + scale) + shift where (scale, shift) =
// linear(silu(cond)) — scale first, unlike adaLN-Zero.
struct AdaLayerNormContinuousImpl : torch::nn::Module {
  AdaLayerNormContinuousImpl(int64_t dim, int64_t conditioning_dim, bool bias = true, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& conditioning);
  double eps;
  diffusers::Linear linear{nullptr};
};
TORCH_MODULE(AdaLayerNormContinuous);

// Flux's rotary embedding of position ids: per axis i, get_1d_rotary_pos_embed(axes_dims[i], ids[:, i], theta) with
// frequencies in fp64, cos/sin repeated pairwise and concatenated over the axes → cos, sin (S, sum(axes_dims)) fp32.
struct Rotary {
  torch::Tensor cos, sin;
  bool defined() const { return cos.defined(); }
};
Rotary rotary_embedding(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims, double theta);
// x (B, S, H, Dh) with interleaved (real, imaginary) pairs rotated by the table (S, Dh); computed in fp32.
torch::Tensor apply_rotary(const torch::Tensor& x, const Rotary& rotary);

// Softmax attention over (B, S, H, Dh) queries, keys and values after the rotary embedding (when defined), with the
// key bias / query rows of joint_mask → (B, S, H·Dh).
torch::Tensor rotary_attention(torch::Tensor q, torch::Tensor k, const torch::Tensor& v, const Rotary& rotary,
                               const torch::Tensor& key_bias = {}, const torch::Tensor& query_keep = {});

// The qk_norm values a joint attention accepts (diffusers raises for the others on added projections).
dit::QKNorm parse_joint_qk_norm(const std::string& value, const std::string& key);

struct JointAttentionOptions {
  int64_t dim = 0;
  int64_t heads = 1;
  int64_t dim_head = 64;
  dit::QKNorm qk_norm = dit::QKNorm::None;
  double eps = 1e-6;
  bool bias = true;               // of every projection (Flux2's have none)
  bool added_kv = true;           // add_q/k/v_proj for a second (text) stream
  bool context_pre_only = false;  // no to_add_out: the text stream's attention output is not used
  bool pre_only = false;          // no to_out (Flux's single-stream blocks project it themselves)
  bool text_first = false;        // joint sequence [text, image] (Flux) rather than [image, text] (SD3)
};

// The attention of MMDiT blocks: to_q/to_k/to_v (+ norm_q/norm_k per head) on the image stream, add_q_proj/
// add_k_proj/add_v_proj (+ norm_added_q/norm_added_k) on the text stream, one softmax attention over both, then
// to_out.0 and to_add_out. Without added_kv it is single-stream self-attention over x.
struct JointAttentionImpl : torch::nn::Module {
  explicit JointAttentionImpl(const JointAttentionOptions& options);
  // x (B, N, dim), context (B, T, dim) or undefined. rotary over the joint sequence (Flux), or undefined.
  // key_bias: (B, 1, S) additive bias over the joint sequence's keys, or undefined; query_keep: (B, S, 1) 0/1 rows
  // that zero the outputs of queries that see no key (a bool mask's padded queries). Returns (x_out, context_out)
  // (context_out undefined without context; not projected when context_pre_only).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context = {},
                                                  const Rotary& rotary = {}, const torch::Tensor& key_bias = {},
                                                  const torch::Tensor& query_keep = {});

  JointAttentionOptions options;
  diffusers::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  diffusers::Linear add_q_proj{nullptr}, add_k_proj{nullptr}, add_v_proj{nullptr}, to_add_out{nullptr};
  // Per-head qk norms (registered as norm_q, norm_k, norm_added_q, norm_added_k for the kinds that have weights).
  dit::RMSNorm rms_q{nullptr}, rms_k{nullptr}, rms_added_q{nullptr}, rms_added_k{nullptr};
  diffusers::LayerNorm ln_q{nullptr}, ln_k{nullptr}, ln_added_q{nullptr}, ln_added_k{nullptr};

 private:
  torch::Tensor norm_heads(const torch::Tensor& t, bool query, bool added);
};
TORCH_MODULE(JointAttention);

// A (B, S) keep mask (bool or 0/1) → the key bias (B, 1, S) (0 kept, −inf dropped) and the query rows (B, S, 1) that
// a mask_q AND mask_k attention leaves without any key.
std::pair<torch::Tensor, torch::Tensor> joint_mask(const torch::Tensor& mask, torch::ScalarType dtype);

// CombinedTimestepTextProjEmbeddings / CombinedTimestepGuidanceTextProjEmbeddings: 256 flipped sinusoid features of
// the timestep (and guidance) → timestep_embedder (+ guidance_embedder), plus text_embedder(pooled) (SiLU).
struct TimestepTextEmbeddingsImpl : torch::nn::Module {
  TimestepTextEmbeddingsImpl(int64_t embedding_dim, int64_t pooled_projection_dim, bool guidance);
  // timestep, guidance (B,) on the model's scale; guidance must be given exactly when the module has a guidance
  // embedder (named errors otherwise).
  torch::Tensor forward(const torch::Tensor& timestep, const torch::Tensor& guidance, const torch::Tensor& pooled);
  bool guidance;
  dit::TimestepEmbedding timestep_embedder{nullptr}, guidance_embedder{nullptr};
  dit::TextProjection text_embedder{nullptr};
};
TORCH_MODULE(TimestepTextEmbeddings);

// Runs a two-stream block under gradient checkpointing (activations recomputed in backward): its (text, image)
// outputs travel as one [text, image] tensor; text_len is the text rows it returns (0: it returns no text).
// Undefined inputs are passed as empty tensors (see or_empty / defined_or_none).
using StreamBlock = std::function<std::pair<torch::Tensor, torch::Tensor>(const std::vector<torch::Tensor>&)>;
std::pair<torch::Tensor, torch::Tensor> checkpointed_streams(const StreamBlock& block,
                                                             const std::vector<torch::Tensor>& inputs,
                                                             const torch::nn::Module& module, int64_t text_len);
inline torch::Tensor or_empty(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() ? t : torch::empty({0}, like.options());
}
inline torch::Tensor defined_or_none(const torch::Tensor& t) {
  return t.numel() ? t : torch::Tensor();
}

// Loads a transformer's weights from a diffusers model folder (diffusion_pytorch_model*.safetensors[.index.json]) or
// one safetensors file / shard index into `module`, naming every missing, unexpected and mis-shaped tensor.
void load_transformer_weights(torch::nn::Module& module, const std::string& path);

}  // namespace repa::models::mmdit
