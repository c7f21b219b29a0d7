#include "core/models/dit_layers.h"

#include <cmath>
#include <string>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/nn/cpu_attention.h"

namespace repa::models::dit {

RMSNormImpl::RMSNormImpl(int64_t d, double epsilon, bool affine, bool with_bias) : dim(d), eps(epsilon) {
  if (affine) {
    weight = register_parameter("weight", torch::ones({d}));
    if (with_bias) bias = register_parameter("bias", torch::zeros({d}));
  }
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto variance = x.to(torch::kFloat32).pow(2).mean(-1, /*keepdim=*/true);
  auto h = x * torch::rsqrt(variance + eps);
  if (!weight.defined()) return h.to(x.scalar_type());
  // Half-precision weights pull the normalised states down to their dtype first, as diffusers does.
  if (weight.scalar_type() == torch::kHalf || weight.scalar_type() == torch::kBFloat16) h = h.to(weight.scalar_type());
  h = h * weight;
  return bias.defined() ? h + bias : h;
}

torch::Tensor keep_mask_to_bias(const torch::Tensor& mask, torch::ScalarType dtype, const std::string& name) {
  if (!mask.defined()) return mask;
  if (mask.dim() == 3) return mask.to(dtype);
  if (mask.dim() != 2)
    throw InputError(name + ": expected a (B, T) keep-mask or a (B, 1, T) bias, got " + c10::str(mask.sizes()));
  return ((1 - mask.to(dtype)) * -10000.0).unsqueeze(1);
}

torch::Tensor multi_head_attention_with_bias(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                             int64_t heads, const torch::Tensor& bias) {
  if (!bias.defined()) return nn::multi_head_attention(q, k, v, heads);
  const int64_t batch = q.size(0), dim_head = q.size(-1) / heads;
  const auto split = [&](const torch::Tensor& t) { return t.view({batch, -1, heads, dim_head}).transpose(1, 2); };
  if (bias.size(0) != batch || bias.size(-1) != k.size(1))
    throw InputError("attention mask " + c10::str(bias.sizes()) + " does not fit " + std::to_string(batch) +
                     " samples of " + std::to_string(k.size(1)) + " keys");
  // (B, 1, T) → (B, 1, 1, T): one bias row for every head and query.
  const auto bias4 = (bias.dim() == 3 ? bias.unsqueeze(1) : bias).to(q.scalar_type());
  torch::Tensor attended;
#if REPA_TORCH_AT_LEAST(2, 0)
  attended = at::scaled_dot_product_attention(split(q), split(k), split(v), bias4);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim_head));
  const auto scores = torch::matmul(split(q) * scale, split(k).transpose(-2, -1)) + bias4;
  attended = torch::matmul(torch::softmax(scores, -1), split(v));
#endif
  return attended.transpose(1, 2).reshape({batch, -1, heads * dim_head});
}

QKNorm parse_qk_norm(const std::string& value, const std::string& key) {
  if (value.empty()) return QKNorm::None;
  if (value == "layer_norm") return QKNorm::LayerNorm;
  if (value == "fp32_layer_norm") return QKNorm::FP32LayerNorm;
  if (value == "layer_norm_across_heads") return QKNorm::LayerNormAcrossHeads;
  if (value == "rms_norm") return QKNorm::RMSNorm;
  if (value == "rms_norm_across_heads") return QKNorm::RMSNormAcrossHeads;
  if (value == "l2") return QKNorm::L2;
  throw InputError("config key '" + key + "': unknown qk_norm '" + value +
                   "' (expected null, layer_norm, fp32_layer_norm, layer_norm_across_heads, rms_norm, "
                   "rms_norm_across_heads or l2)");
}

AttentionImpl::AttentionImpl(const AttentionOptions& opts) : options(opts) {
  if (options.kv_heads == 0) options.kv_heads = options.heads;
  const int64_t inner = options.heads * options.dim_head, inner_kv = options.kv_heads * options.dim_head;
  const int64_t kv_dim = options.cross_attention_dim > 0 ? options.cross_attention_dim : options.query_dim;
  to_q = register_module("to_q", diffusers::Linear(options.query_dim, inner, options.bias));
  to_k = register_module("to_k", diffusers::Linear(kv_dim, inner_kv, options.bias));
  to_v = register_module("to_v", diffusers::Linear(kv_dim, inner_kv, options.bias));
  switch (options.qk_norm) {
    case QKNorm::LayerNorm:
      layer_norm_q =
          register_module("norm_q", diffusers::LayerNorm(options.dim_head, options.eps, opts.elementwise_affine));
      layer_norm_k =
          register_module("norm_k", diffusers::LayerNorm(options.dim_head, options.eps, opts.elementwise_affine));
      break;
    case QKNorm::LayerNormAcrossHeads:
      layer_norm_q = register_module("norm_q", diffusers::LayerNorm(inner, options.eps, true));
      layer_norm_k = register_module("norm_k", diffusers::LayerNorm(inner_kv, options.eps, true));
      break;
    case QKNorm::RMSNorm:
      rms_norm_q = register_module("norm_q", RMSNorm(options.dim_head, options.eps, opts.elementwise_affine));
      rms_norm_k = register_module("norm_k", RMSNorm(options.dim_head, options.eps, opts.elementwise_affine));
      break;
    case QKNorm::RMSNormAcrossHeads:
      rms_norm_q = register_module("norm_q", RMSNorm(inner, options.eps));
      rms_norm_k = register_module("norm_k", RMSNorm(inner_kv, options.eps));
      break;
    case QKNorm::None:
    case QKNorm::FP32LayerNorm:
    case QKNorm::L2:
      break;
  }
  // to_out is a ModuleList [Linear, Dropout] in diffusers; only its Linear holds weights.
  auto out_list = register_module("to_out", torch::nn::ModuleList());
  to_out = diffusers::Linear(inner, options.query_dim, options.out_bias);
  out_list->push_back(to_out);
}

namespace {

// A norm over the last dim of (B, S, H·Dh): across the whole width, or per head of width dim_head.
torch::Tensor per_head(const torch::Tensor& x, int64_t dim_head, const std::function<torch::Tensor(torch::Tensor)>& f) {
  const auto sizes = x.sizes().vec();
  return f(x.view({sizes[0], sizes[1], -1, dim_head})).view(sizes);
}

}  // namespace

void AttentionImpl::project(const torch::Tensor& x, const torch::Tensor& context, torch::Tensor& q, torch::Tensor& k,
                            torch::Tensor& v) {
  const auto& kv_source = context.defined() ? context : x;
  q = to_q(x);
  k = to_k(kv_source);
  v = to_v(kv_source);
  const int64_t dh = options.dim_head;
  switch (options.qk_norm) {
    case QKNorm::LayerNorm:
      q = per_head(q, dh, [&](torch::Tensor t) { return layer_norm_q(t); });
      k = per_head(k, dh, [&](torch::Tensor t) { return layer_norm_k(t); });
      break;
    case QKNorm::RMSNorm:
      q = per_head(q, dh, [&](torch::Tensor t) { return rms_norm_q(t); });
      k = per_head(k, dh, [&](torch::Tensor t) { return rms_norm_k(t); });
      break;
    case QKNorm::LayerNormAcrossHeads:
      q = layer_norm_q(q);
      k = layer_norm_k(k);
      break;
    case QKNorm::RMSNormAcrossHeads:
      q = rms_norm_q(q);
      k = rms_norm_k(k);
      break;
    case QKNorm::FP32LayerNorm: {
      const auto fp32_norm = [&](torch::Tensor t) {
        return torch::layer_norm(t.to(torch::kFloat32), {dh}, {}, {}, options.eps).to(t.scalar_type());
      };
      q = per_head(q, dh, fp32_norm);
      k = per_head(k, dh, fp32_norm);
      break;
    }
    case QKNorm::L2: {
      const auto l2 = [&](torch::Tensor t) {
        return torch::nn::functional::normalize(
            t, torch::nn::functional::NormalizeFuncOptions().p(2).dim(-1).eps(options.eps));
      };
      q = per_head(q, dh, l2);
      k = per_head(k, dh, l2);
      break;
    }
    case QKNorm::None:
      break;
  }
}

torch::Tensor AttentionImpl::output(const torch::Tensor& attended) {
  auto out = to_out(attended);
  return options.dropout > 0.0 ? torch::dropout(out, options.dropout, is_training()) : out;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& bias) {
  if (options.kv_heads != options.heads)
    throw InputError("attention: softmax attention with kv_heads " + std::to_string(options.kv_heads) + " != heads " +
                     std::to_string(options.heads) + " is not supported");
  torch::Tensor q, k, v;
  project(x, context, q, k, v);
  const bool reduced = q.scalar_type() != torch::kFloat || compat::detail::cuda_autocast_enabled();
  if (options.upcast && reduced) {
    compat::AutocastDisabled fp32;
    const auto f = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kFloat) : t; };
    return output(multi_head_attention_with_bias(f(q), f(k), f(v), options.heads, f(bias)).to(v.scalar_type()));
  }
  return output(multi_head_attention_with_bias(q, k, v, options.heads, bias));
}

FeedForwardActivation parse_feed_forward_activation(const std::string& value, const std::string& key) {
  if (value == "gelu") return FeedForwardActivation::GELU;
  if (value == "gelu-approximate") return FeedForwardActivation::GELUTanh;
  if (value == "geglu") return FeedForwardActivation::GEGLU;
  if (value == "geglu-approximate") return FeedForwardActivation::GEGLUApproximate;
  if (value == "swiglu") return FeedForwardActivation::SwiGLU;
  if (value == "linear-silu") return FeedForwardActivation::LinearSiLU;
  throw InputError("config key '" + key + "': unsupported activation_fn '" + value +
                   "' (expected gelu, gelu-approximate, geglu, geglu-approximate, swiglu or linear-silu)");
}

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& opts) : options(opts) {
  if (options.inner_dim == 0) options.inner_dim = static_cast<int64_t>(static_cast<double>(options.dim) * options.mult);
  if (options.dim_out == 0) options.dim_out = options.dim;
  const bool gated =
      options.activation == FeedForwardActivation::GEGLU || options.activation == FeedForwardActivation::SwiGLU;
  auto net = register_module("net", torch::nn::ModuleList());
  auto act = std::make_shared<torch::nn::Module>();  // net.0: holds the projection `proj`
  proj =
      act->register_module("proj", diffusers::Linear(options.dim, options.inner_dim * (gated ? 2 : 1), options.bias));
  net->push_back(act);
  net->push_back(torch::nn::Dropout(options.dropout));
  out = diffusers::Linear(options.inner_dim, options.dim_out, options.bias);
  net->push_back(out);
  if (options.final_dropout) net->push_back(torch::nn::Dropout(options.dropout));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = proj(x);
  switch (options.activation) {
    case FeedForwardActivation::GELU:
      h = torch::gelu(h);
      break;
    case FeedForwardActivation::GELUTanh:
      h = torch::gelu(h, "tanh");
      break;
    case FeedForwardActivation::GEGLU: {
      const auto parts = h.chunk(2, -1);
      h = parts[0] * torch::gelu(parts[1]);
      break;
    }
    case FeedForwardActivation::GEGLUApproximate:
      h = h * torch::sigmoid(1.702 * h);
      break;
    case FeedForwardActivation::SwiGLU: {
      const auto parts = h.chunk(2, -1);
      h = parts[0] * torch::silu(parts[1]);
      break;
    }
    case FeedForwardActivation::LinearSiLU:
      h = torch::silu(h);
      break;
  }
  if (options.dropout > 0.0) h = torch::dropout(h, options.dropout, is_training());
  h = out(h);
  if (options.final_dropout && options.dropout > 0.0) h = torch::dropout(h, options.dropout, is_training());
  return h;
}

}  // namespace repa::models::dit
