#include "core/models/mmdit_layers.h"

#include <filesystem>
#include <limits>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_weights.h"

namespace repa::models::mmdit {

torch::Tensor norm_modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                            double eps) {
  const auto normed = torch::layer_norm(x, {x.size(-1)}, {}, {}, eps);
  return normed * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

AdaLayerNormZeroImpl::AdaLayerNormZeroImpl(int64_t dim, int64_t n, bool bias) : chunks(n) {
  linear = register_module("linear", diffusers::Linear(dim, n * dim, bias));
}

std::vector<torch::Tensor> AdaLayerNormZeroImpl::forward(const torch::Tensor& emb) {
  return linear(torch::silu(emb)).chunk(chunks, 1);
}

AdaLayerNormContinuousImpl::AdaLayerNormContinuousImpl(int64_t dim, int64_t conditioning_dim, bool bias, double epsilon)
    : eps(epsilon) {
  linear = register_module("linear", diffusers::Linear(conditioning_dim, 2 * dim, bias));
}

torch::Tensor AdaLayerNormContinuousImpl::forward(const torch::Tensor& x, const torch::Tensor& conditioning) {
  const auto parts = linear(torch::silu(conditioning).to(x.scalar_type())).chunk(2, 1);
  return norm_modulate(x, parts[1], parts[0], eps);  // chunk 0 is the scale here
}

Rotary rotary_embedding(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims, double theta) {
  if (ids.dim() != 2 || ids.size(1) != static_cast<int64_t>(axes_dims.size()))
    throw InputError("rotary position ids: expected (S, " + std::to_string(axes_dims.size()) + "), got " +
                     c10::str(ids.sizes()));
  // diffusers casts the ids to fp32 first, then forms the angles in fp64.
  const auto pos = ids.to(torch::kFloat32).to(torch::kFloat64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(ids.device());
  std::vector<torch::Tensor> cos_parts, sin_parts;
  for (std::size_t i = 0; i < axes_dims.size(); ++i) {
    const int64_t dim = axes_dims[i];
    const auto freqs = 1.0 / torch::pow(theta, torch::arange(0, dim, 2, f64) / static_cast<double>(dim));
    const auto angles = torch::outer(pos.select(1, static_cast<int64_t>(i)), freqs);
    cos_parts.push_back(angles.cos().repeat_interleave(2, 1).to(torch::kFloat32));
    sin_parts.push_back(angles.sin().repeat_interleave(2, 1).to(torch::kFloat32));
  }
  return {torch::cat(cos_parts, 1), torch::cat(sin_parts, 1)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const Rotary& rotary) {
  const auto xf = x.to(torch::kFloat32);
  const auto pairs = xf.unflatten(-1, {-1, 2});
  const auto rotated = torch::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);
  const auto cos = rotary.cos.unsqueeze(0).unsqueeze(2), sin = rotary.sin.unsqueeze(0).unsqueeze(2);
  return (xf * cos + rotated * sin).to(x.scalar_type());
}

torch::Tensor rotary_attention(torch::Tensor q, torch::Tensor k, const torch::Tensor& v, const Rotary& rotary,
                               const torch::Tensor& key_bias, const torch::Tensor& query_keep) {
  if (rotary.defined()) {
    q = apply_rotary(q, rotary);
    k = apply_rotary(k, rotary);
  }
  const int64_t heads = q.size(2);
  auto attended = dit::multi_head_attention_with_bias(q.flatten(2).contiguous(), k.flatten(2).contiguous(),
                                                      v.flatten(2).contiguous(), heads, key_bias)
                      .to(q.scalar_type());
  if (query_keep.defined()) attended = attended * query_keep.to(attended.scalar_type());
  return attended;
}

dit::QKNorm parse_joint_qk_norm(const std::string& value, const std::string& key) {
  const auto kind = dit::parse_qk_norm(value, key);
  if (kind == dit::QKNorm::None || kind == dit::QKNorm::RMSNorm || kind == dit::QKNorm::LayerNorm ||
      kind == dit::QKNorm::FP32LayerNorm)
    return kind;
  throw InputError("config key '" + key + "': qk_norm '" + value +
                   "' is not supported by joint attention (diffusers accepts null, rms_norm, layer_norm or "
                   "fp32_layer_norm with added text projections)");
}

JointAttentionImpl::JointAttentionImpl(const JointAttentionOptions& opts) : options(opts) {
  const int64_t dim = opts.dim, inner = opts.heads * opts.dim_head;
  to_q = register_module("to_q", diffusers::Linear(dim, inner, opts.bias));
  to_k = register_module("to_k", diffusers::Linear(dim, inner, opts.bias));
  to_v = register_module("to_v", diffusers::Linear(dim, inner, opts.bias));
  const auto make_norms = [&](const std::string& q_name, const std::string& k_name, dit::RMSNorm& rq, dit::RMSNorm& rk,
                              diffusers::LayerNorm& lq, diffusers::LayerNorm& lk) {
    if (opts.qk_norm == dit::QKNorm::RMSNorm) {
      rq = register_module(q_name, dit::RMSNorm(opts.dim_head, opts.eps));
      rk = register_module(k_name, dit::RMSNorm(opts.dim_head, opts.eps));
    } else if (opts.qk_norm == dit::QKNorm::LayerNorm) {
      lq = register_module(q_name, diffusers::LayerNorm(opts.dim_head, opts.eps, true));
      lk = register_module(k_name, diffusers::LayerNorm(opts.dim_head, opts.eps, true));
    }
  };
  make_norms("norm_q", "norm_k", rms_q, rms_k, ln_q, ln_k);
  if (!opts.pre_only) {
    // to_out is a ModuleList [Linear, Dropout] in diffusers; only its Linear holds weights.
    auto out_list = register_module("to_out", torch::nn::ModuleList());
    to_out = diffusers::Linear(inner, dim, opts.bias);
    out_list->push_back(to_out);
  }
  if (opts.added_kv) {
    add_q_proj = register_module("add_q_proj", diffusers::Linear(dim, inner, opts.bias));
    add_k_proj = register_module("add_k_proj", diffusers::Linear(dim, inner, opts.bias));
    add_v_proj = register_module("add_v_proj", diffusers::Linear(dim, inner, opts.bias));
    make_norms("norm_added_q", "norm_added_k", rms_added_q, rms_added_k, ln_added_q, ln_added_k);
    if (!opts.context_pre_only) to_add_out = register_module("to_add_out", diffusers::Linear(inner, dim, opts.bias));
  }
}

torch::Tensor JointAttentionImpl::norm_heads(const torch::Tensor& t, bool query, bool added) {
  const auto heads = t.unflatten(-1, {options.heads, options.dim_head});
  switch (options.qk_norm) {
    case dit::QKNorm::RMSNorm:
      return (added ? (query ? rms_added_q : rms_added_k) : (query ? rms_q : rms_k))->forward(heads);
    case dit::QKNorm::LayerNorm:
      return (added ? (query ? ln_added_q : ln_added_k) : (query ? ln_q : ln_k))->forward(heads);
    case dit::QKNorm::FP32LayerNorm:
      return torch::layer_norm(heads.to(torch::kFloat32), {options.dim_head}, {}, {}, options.eps).to(t.scalar_type());
    default:
      return heads;
  }
}

std::pair<torch::Tensor, torch::Tensor> JointAttentionImpl::forward(const torch::Tensor& x,
                                                                    const torch::Tensor& context, const Rotary& rotary,
                                                                    const torch::Tensor& key_bias,
                                                                    const torch::Tensor& query_keep) {
  auto q = norm_heads(to_q(x), true, false);
  auto k = norm_heads(to_k(x), false, false);
  auto v = to_v(x).unflatten(-1, {options.heads, options.dim_head});
  const bool joint = context.defined();
  if (joint) {
    if (!options.added_kv) throw InputError("joint attention: a text stream was given to a single-stream attention");
    const auto cq = norm_heads(add_q_proj(context), true, true);
    const auto ck = norm_heads(add_k_proj(context), false, true);
    const auto cv = add_v_proj(context).unflatten(-1, {options.heads, options.dim_head});
    const auto join = [&](const torch::Tensor& image, const torch::Tensor& text) {
      return options.text_first ? torch::cat({text, image}, 1) : torch::cat({image, text}, 1);
    };
    q = join(q, cq);
    k = join(k, ck);
    v = join(v, cv);
  }
  const auto attended = rotary_attention(q, k, v, rotary, key_bias, query_keep);
  if (!joint) return {options.pre_only ? attended : to_out(attended), torch::Tensor()};
  const int64_t n_image = x.size(1), n_text = context.size(1);
  auto image = attended.narrow(1, options.text_first ? n_text : 0, n_image);
  auto text = attended.narrow(1, options.text_first ? 0 : n_image, n_text);
  image = options.pre_only ? image : to_out(image.contiguous());
  if (to_add_out) text = to_add_out(text.contiguous());
  return {image, text};
}

std::pair<torch::Tensor, torch::Tensor> joint_mask(const torch::Tensor& mask, torch::ScalarType dtype) {
  if (!mask.defined()) return {};
  if (mask.dim() != 2) throw InputError("attention_mask: expected (B, T + N), got " + c10::str(mask.sizes()));
  const auto keep = mask.to(torch::kBool);
  const auto zeros = torch::zeros(keep.sizes(), torch::TensorOptions().dtype(dtype).device(mask.device()));
  // mask_q AND mask_k: a dropped key gets −inf for every query; a dropped query sees no key, and its output row is 0
  // (the value PyTorch's math attention gives a fully masked row), so it never carries NaN into later blocks.
  const auto bias = zeros.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity()).unsqueeze(1);
  return {bias, keep.to(dtype).unsqueeze(-1)};
}

TimestepTextEmbeddingsImpl::TimestepTextEmbeddingsImpl(int64_t embedding_dim, int64_t pooled_projection_dim,
                                                       bool with_guidance)
    : guidance(with_guidance) {
  timestep_embedder = register_module("timestep_embedder", dit::TimestepEmbedding(256, embedding_dim));
  if (guidance) guidance_embedder = register_module("guidance_embedder", dit::TimestepEmbedding(256, embedding_dim));
  text_embedder =
      register_module("text_embedder", dit::TextProjection(pooled_projection_dim, embedding_dim, 0, "silu"));
}

torch::Tensor TimestepTextEmbeddingsImpl::forward(const torch::Tensor& timestep, const torch::Tensor& guidance_scale,
                                                  const torch::Tensor& pooled) {
  if (!pooled.defined()) throw InputError("pooled_projections (B, pooled_projection_dim) is required");
  if (guidance && !guidance_scale.defined())
    throw InputError("guidance (B,) is required: the model has a guidance embedder (guidance_embeds true)");
  if (!guidance && guidance_scale.defined())
    throw InputError("guidance was given but the model has no guidance embedder (guidance_embeds false)");
  const auto dtype = pooled.scalar_type();
  auto emb = timestep_embedder(dit::timestep_features(timestep, 256, true, 0).to(dtype));
  if (guidance) emb = emb + guidance_embedder(dit::timestep_features(guidance_scale, 256, true, 0).to(dtype));
  return emb + text_embedder(pooled);
}

std::pair<torch::Tensor, torch::Tensor> checkpointed_streams(const StreamBlock& block,
                                                             const std::vector<torch::Tensor>& inputs,
                                                             const torch::nn::Module& module, int64_t text_len) {
  const auto joined = diffusers::checkpointed(
      [block, text_len](const std::vector<torch::Tensor>& v) {
        auto [text, image] = block(v);
        return text_len > 0 ? torch::cat({text, image}, 1) : image;
      },
      inputs, diffusers::trainable_parameters(module));
  if (text_len == 0) return {torch::Tensor(), joined};
  return {joined.narrow(1, 0, text_len), joined.narrow(1, text_len, joined.size(1) - text_len)};
}

void load_transformer_weights(torch::nn::Module& module, const std::string& path) {
  const std::string file = std::filesystem::is_directory(path) ? diffusers::find_weights_file(path) : path;
  diffusers::load_checkpoint(module, io::SafetensorsCheckpoint::open(file));
}

}  // namespace repa::models::mmdit
