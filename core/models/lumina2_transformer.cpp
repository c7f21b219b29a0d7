#include "core/models/lumina2_transformer.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "core/base/error.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"

namespace repa::models {

namespace {

constexpr double kRopeTheta = 10000.0;
const char* const kModel = "Lumina2Transformer2DModel";

}  // namespace

Lumina2TransformerConfig Lumina2TransformerConfig::from_diffusers(const nlohmann::json& j) {
  using namespace diffusers;
  if (!j.is_object()) throw InputError(std::string(kModel) + " config: expected a JSON object");
  Lumina2TransformerConfig c;
  c.sample_size = config_int(j, "sample_size", c.sample_size);
  c.patch_size = config_int(j, "patch_size", c.patch_size);
  c.in_channels = config_int(j, "in_channels", c.in_channels);
  c.out_channels = config_has(j, "out_channels") ? config_int(j, "out_channels", c.out_channels) : c.in_channels;
  c.hidden_size = config_int(j, "hidden_size", c.hidden_size);
  c.num_layers = config_int(j, "num_layers", c.num_layers);
  c.num_refiner_layers = config_int(j, "num_refiner_layers", c.num_refiner_layers);
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads);
  c.num_kv_heads = config_int(j, "num_kv_heads", c.num_kv_heads);
  c.multiple_of = config_int(j, "multiple_of", c.multiple_of);
  if (config_has(j, "ffn_dim_multiplier")) c.ffn_dim_multiplier = config_double(j, "ffn_dim_multiplier", 1.0);
  c.norm_eps = config_double(j, "norm_eps", c.norm_eps);
  c.scaling_factor = config_double(j, "scaling_factor", c.scaling_factor);
  c.axes_dim_rope = config_ints(j, "axes_dim_rope", c.axes_dim_rope);
  c.axes_lens = config_ints(j, "axes_lens", c.axes_lens);
  c.cap_feat_dim = config_int(j, "cap_feat_dim", c.cap_feat_dim);
  c.validate();
  return c;
}

void Lumina2TransformerConfig::validate() const {
  const auto positive = [](int64_t v, const char* key) {
    if (v <= 0)
      throw InputError(std::string(kModel) + " config key '" + key + "' must be positive, got " + std::to_string(v));
  };
  positive(sample_size, "sample_size");
  positive(patch_size, "patch_size");
  positive(in_channels, "in_channels");
  positive(out_channels, "out_channels");
  positive(hidden_size, "hidden_size");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_kv_heads, "num_kv_heads");
  positive(multiple_of, "multiple_of");
  positive(cap_feat_dim, "cap_feat_dim");
  if (num_layers < 0) positive(num_layers, "num_layers");
  if (num_refiner_layers < 0) positive(num_refiner_layers, "num_refiner_layers");
  if (hidden_size % num_attention_heads)
    throw InputError(std::string(kModel) + " config key 'hidden_size' = " + std::to_string(hidden_size) +
                     " is not divisible by num_attention_heads = " + std::to_string(num_attention_heads));
  if (num_attention_heads % num_kv_heads)
    throw InputError(std::string(kModel) + " config key 'num_kv_heads' = " + std::to_string(num_kv_heads) +
                     " must divide num_attention_heads = " + std::to_string(num_attention_heads) +
                     " (grouped-query attention)");
  if (axes_dim_rope.size() != 3 || axes_lens.size() != 3)
    throw InputError(std::string(kModel) + " config keys 'axes_dim_rope' and 'axes_lens' must list 3 axes");
  int64_t rope_dim = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (axes_dim_rope[i] <= 0 || axes_dim_rope[i] % 2)
      throw InputError(std::string(kModel) + " config key 'axes_dim_rope' needs positive even sizes, got " +
                       std::to_string(axes_dim_rope[i]));
    positive(axes_lens[i], "axes_lens");
    rope_dim += axes_dim_rope[i];
  }
  if (rope_dim != head_dim())
    throw InputError(std::string(kModel) + " config key 'axes_dim_rope' sums to " + std::to_string(rope_dim) +
                     ", but the head dim hidden_size / num_attention_heads is " + std::to_string(head_dim()));
}

torch::Tensor lumina2_apply_rotary(const torch::Tensor& x, const Lumina2Rotary& rotary) {
  const auto pairs = x.to(torch::kFloat64).unflatten(-1, {-1, 2});
  const auto re = pairs.select(-1, 0), im = pairs.select(-1, 1);
  // (B, S, Dh/2) → (B, S, 1, Dh/2): the same factor for every head.
  const auto cos = rotary.cos.unsqueeze(2), sin = rotary.sin.unsqueeze(2);
  return torch::stack({re * cos - im * sin, re * sin + im * cos}, -1).flatten(-2).to(x.scalar_type());
}

Lumina2FeedForwardImpl::Lumina2FeedForwardImpl(int64_t dim, int64_t multiple_of, std::optional<double> multiplier) {
  int64_t inner = 4 * dim;
  if (multiplier) inner = static_cast<int64_t>(*multiplier * static_cast<double>(inner));
  inner = multiple_of * ((inner + multiple_of - 1) / multiple_of);
  linear_1 = register_module("linear_1", diffusers::Linear(dim, inner, false));
  linear_2 = register_module("linear_2", diffusers::Linear(inner, dim, false));
  linear_3 = register_module("linear_3", diffusers::Linear(dim, inner, false));
}

torch::Tensor Lumina2FeedForwardImpl::forward(const torch::Tensor& x) {
  const auto gate = linear_1(x);
  // FP32SiLU: the activation is taken in fp32 and returned in the input's dtype.
  return linear_2(torch::silu(gate.to(torch::kFloat32)).to(gate.scalar_type()) * linear_3(x));
}

Lumina2BlockImpl::Lumina2BlockImpl(const Lumina2TransformerConfig& c, bool with_modulation)
    : modulated(with_modulation), heads(c.num_attention_heads), kv_heads(c.num_kv_heads) {
  const int64_t dim = c.hidden_size;
  dit::AttentionOptions o;
  o.query_dim = dim;
  o.heads = c.num_attention_heads;
  o.kv_heads = c.num_kv_heads;
  o.dim_head = c.head_dim();
  o.bias = false;
  o.out_bias = false;
  o.qk_norm = dit::QKNorm::RMSNorm;
  o.eps = 1e-5;
  attn = register_module("attn", dit::Attention(o));
  feed_forward = register_module("feed_forward", Lumina2FeedForward(dim, c.multiple_of, c.ffn_dim_multiplier));
  if (modulated) {
    auto holder = register_module("norm1", std::make_shared<torch::nn::Module>());  // LuminaRMSNormZero
    norm1_linear = holder->register_module("linear", diffusers::Linear(c.temb_dim(), 4 * dim));
    norm1 = holder->register_module("norm", dit::RMSNorm(dim, c.norm_eps));
  } else {
    norm1 = register_module("norm1", dit::RMSNorm(dim, c.norm_eps));
  }
  ffn_norm1 = register_module("ffn_norm1", dit::RMSNorm(dim, c.norm_eps));
  norm2 = register_module("norm2", dit::RMSNorm(dim, c.norm_eps));
  ffn_norm2 = register_module("ffn_norm2", dit::RMSNorm(dim, c.norm_eps));
}

torch::Tensor Lumina2BlockImpl::attention(const torch::Tensor& x, const torch::Tensor& key_bias,
                                          const Lumina2Rotary& rotary) {
  torch::Tensor q, k, v;
  attn->project(x, torch::Tensor(), q, k, v);
  const int64_t b = x.size(0), s = x.size(1), dh = attn->options.dim_head;
  q = lumina2_apply_rotary(q.view({b, s, heads, dh}), rotary);
  k = lumina2_apply_rotary(k.view({b, s, kv_heads, dh}), rotary);
  v = v.view({b, s, kv_heads, dh});
  // Grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
  if (kv_heads != heads) {
    k = k.repeat_interleave(heads / kv_heads, 2);
    v = v.repeat_interleave(heads / kv_heads, 2);
  }
  const auto attended = dit::multi_head_attention_with_bias(q.flatten(2).contiguous(), k.flatten(2).contiguous(),
                                                            v.flatten(2).contiguous(), heads, key_bias);
  return attn->output(attended.to(x.scalar_type()));
}

torch::Tensor Lumina2BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& key_bias,
                                        const Lumina2Rotary& rotary, const torch::Tensor& temb) {
  if (!modulated) {
    const auto h = x + norm2(attention(norm1(x), key_bias, rotary));
    return h + ffn_norm2(feed_forward(ffn_norm1(h)));
  }
  if (!temb.defined()) throw InputError(std::string(kModel) + ": a modulated block needs the timestep embedding");
  // scale_msa, gate_msa, scale_mlp, gate_mlp, each (B, D).
  const auto m = norm1_linear(torch::silu(temb)).chunk(4, 1);
  const auto attended = attention(norm1(x) * (1 + m[0].unsqueeze(1)), key_bias, rotary);
  const auto h = x + m[1].unsqueeze(1).tanh() * norm2(attended);
  const auto mlp = feed_forward(ffn_norm1(h) * (1 + m[2].unsqueeze(1)));
  return h + m[3].unsqueeze(1).tanh() * ffn_norm2(mlp);
}

Lumina2TransformerImpl::Lumina2TransformerImpl(const Lumina2TransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.hidden_size, p = config.patch_size;
  x_embedder = register_module("x_embedder", diffusers::Linear(p * p * config.in_channels, dim));
  auto time_caption = register_module("time_caption_embed", std::make_shared<torch::nn::Module>());
  timestep_embedder =
      time_caption->register_module("timestep_embedder", dit::TimestepEmbedding(256, config.temb_dim()));
  auto caption = time_caption->register_module("caption_embedder", std::make_shared<torch::nn::Module>());
  caption_norm = caption->register_module("0", dit::RMSNorm(config.cap_feat_dim, config.norm_eps));
  caption_linear = caption->register_module("1", diffusers::Linear(config.cap_feat_dim, dim));
  const auto make_list = [&](const std::string& name, std::vector<Lumina2Block>& blocks, int64_t n, bool modulated) {
    auto list = register_module(name, torch::nn::ModuleList());
    for (int64_t i = 0; i < n; ++i) {
      blocks.push_back(Lumina2Block(config, modulated));
      list->push_back(blocks.back());
    }
  };
  make_list("noise_refiner", noise_refiner, config.num_refiner_layers, true);
  make_list("context_refiner", context_refiner, config.num_refiner_layers, false);
  make_list("layers", layers, config.num_layers, true);
  auto norm_out = register_module("norm_out", std::make_shared<torch::nn::Module>());
  norm_out_linear_1 = norm_out->register_module("linear_1", diffusers::Linear(config.temb_dim(), dim));
  norm_out_linear_2 = norm_out->register_module("linear_2", diffusers::Linear(dim, p * p * config.out_channels));
}

namespace {

// The rotary angles of (N, 3) integer positions: per axis, position · θ^(−2i/d) in fp64, concatenated → (N, Dh/2).
torch::Tensor rotary_angles(const torch::Tensor& positions, const std::vector<int64_t>& axes_dim) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(positions.device());
  std::vector<torch::Tensor> parts;
  for (std::size_t i = 0; i < axes_dim.size(); ++i) {
    const auto d = static_cast<double>(axes_dim[i]);
    const auto freqs = 1.0 / torch::pow(kRopeTheta, torch::arange(0, axes_dim[i], 2, f64) / d);
    parts.push_back(torch::outer(positions.select(1, static_cast<int64_t>(i)).to(torch::kFloat64), freqs));
  }
  return torch::cat(parts, 1);
}

// Caption length per sample from a (B, T) prefix mask; InputError for anything else.
std::vector<int64_t> caption_lengths(const torch::Tensor& mask, int64_t batch, int64_t tokens) {
  if (!mask.defined() || mask.dim() != 2 || mask.size(0) != batch || mask.size(1) != tokens)
    throw InputError(std::string(kModel) + ": encoder_attention_mask must be (B, T) = (" + std::to_string(batch) +
                     ", " + std::to_string(tokens) + ") beside encoder_hidden_states, got " +
                     (mask.defined() ? c10::str(mask.sizes()) : std::string("none")));
  const auto keep = mask.to(torch::kCPU).ne(0).to(torch::kLong);
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = keep[b].sum().item<int64_t>();
    if (n == 0)
      throw InputError(std::string(kModel) + ": encoder_attention_mask of sample " + std::to_string(b) +
                       " has no caption token (Lumina2 needs at least one)");
    if (keep[b].narrow(0, 0, n).sum().item<int64_t>() != n)
      throw InputError(std::string(kModel) + ": encoder_attention_mask of sample " + std::to_string(b) +
                       " is not a prefix of ones (captions are right-padded)");
    lengths.push_back(n);
  }
  return lengths;
}

torch::Tensor key_bias_of(const torch::Tensor& keep, torch::ScalarType dtype) {
  const auto zeros = torch::zeros(keep.sizes(), torch::TensorOptions().dtype(dtype).device(keep.device()));
  return zeros.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity()).unsqueeze(1);
}

}  // namespace

DiTOutput Lumina2TransformerImpl::forward(const Lumina2Inputs& in, int64_t tap) {
  check_tap_index(tap, config.num_layers, 0, std::string(kModel) + " (layers; the refiners are not counted)");
  const auto& x = in.hidden_states;
  if (!x.defined() || x.dim() != 4 || x.size(1) != config.in_channels)
    throw InputError(std::string(kModel) + ": hidden_states must be (B, " + std::to_string(config.in_channels) +
                     ", H, W), got " + (x.defined() ? c10::str(x.sizes()) : std::string("none")));
  const auto& caption = in.encoder_hidden_states;
  if (!caption.defined() || caption.dim() != 3 || caption.size(0) != x.size(0) ||
      caption.size(2) != config.cap_feat_dim)
    throw InputError(std::string(kModel) + ": encoder_hidden_states must be (B, T, " +
                     std::to_string(config.cap_feat_dim) + "), got " +
                     (caption.defined() ? c10::str(caption.sizes()) : std::string("none")));
  if (!in.timestep.defined() || in.timestep.numel() != x.size(0))
    throw InputError(std::string(kModel) + ": timestep must hold one value per sample");
  const int64_t batch = x.size(0), p = config.patch_size, height = x.size(2), width = x.size(3);
  if (height % p || width % p)
    throw InputError(std::string(kModel) + ": hidden_states " + std::to_string(height) + "x" + std::to_string(width) +
                     " is not divisible by patch_size " + std::to_string(p));
  const int64_t grid_h = height / p, grid_w = width / p, n_image = grid_h * grid_w, n_caption = caption.size(1);
  const auto lengths = caption_lengths(in.encoder_attention_mask, batch, n_caption);
  const int64_t longest_caption = *std::max_element(lengths.begin(), lengths.end());
  if (longest_caption >= config.axes_lens[0] || grid_h > config.axes_lens[1] || grid_w > config.axes_lens[2])
    throw InputError(std::string(kModel) + ": positions past the rotary tables (config key 'axes_lens' = [" +
                     std::to_string(config.axes_lens[0]) + ", " + std::to_string(config.axes_lens[1]) + ", " +
                     std::to_string(config.axes_lens[2]) + "]): caption of " + std::to_string(longest_caption) +
                     " tokens, a " + std::to_string(grid_h) + "x" + std::to_string(grid_w) + " token grid");

  const auto temb =
      timestep_embedder(dit::timestep_features(in.timestep.reshape({-1}), 256, true, 0.0).to(x.scalar_type()));
  auto context = caption_linear(caption_norm(caption));

  // Positions: caption r → (r, 0, 0); image (row, col) → (L_b, row, col); joint padding → (0, 0, 0).
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  const auto rows = torch::arange(grid_h, long_options).repeat_interleave(grid_w);
  const auto cols = torch::arange(grid_w, long_options).repeat({grid_h});
  int64_t max_seq = 0;
  for (const auto l : lengths) max_seq = std::max(max_seq, l + n_image);
  std::vector<torch::Tensor> joint_angles, caption_angles, caption_keep, image_angles;
  for (const int64_t l : lengths) {
    const auto caption_pos = torch::stack(
        {torch::arange(l, long_options), torch::zeros({l}, long_options), torch::zeros({l}, long_options)}, 1);
    const auto image_pos = torch::stack({torch::full({n_image}, l, long_options), rows, cols}, 1);
    const auto pad_pos = torch::zeros({max_seq - l - n_image, 3}, long_options);
    const auto pos = torch::cat({caption_pos, image_pos, pad_pos}, 0);
    const auto angles = rotary_angles(pos, config.axes_dim_rope);
    joint_angles.push_back(angles);
    image_angles.push_back(angles.narrow(0, l, n_image));
    caption_angles.push_back(
        torch::cat({angles.narrow(0, 0, l), torch::zeros({n_caption - l, angles.size(1)}, angles.options())}, 0));
    caption_keep.push_back(torch::arange(n_caption, long_options).lt(l).to(torch::kFloat64).unsqueeze(1));
  }
  const auto rotary_of = [](const torch::Tensor& angles, const torch::Tensor& keep) {
    Lumina2Rotary r{angles.cos(), angles.sin()};
    if (keep.defined()) r = {r.cos * keep, r.sin * keep};
    return r;
  };
  const auto keep_rows = torch::stack(caption_keep);
  const auto caption_rotary = rotary_of(torch::stack(caption_angles), keep_rows);
  const auto image_rotary = rotary_of(torch::stack(image_angles), {});
  const auto joint_rotary = rotary_of(torch::stack(joint_angles), {});

  // (B, C, h, p, w, p) → (B, h·w, p·p·C): each patch flattened (p_h, p_w, C).
  auto h = x_embedder(x.reshape({batch, config.in_channels, grid_h, p, grid_w, p})
                          .permute({0, 2, 4, 3, 5, 1})
                          .flatten(3)
                          .flatten(1, 2));

  const auto caption_bias = key_bias_of(in.encoder_attention_mask.to(x.device()).ne(0), context.scalar_type());
  for (auto& block : context_refiner) context = block->forward(context, caption_bias, caption_rotary, temb);
  for (auto& block : noise_refiner) h = block->forward(h, torch::Tensor(), image_rotary, temb);

  std::vector<torch::Tensor> rows_of_sample;
  bool ragged = false;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t l = lengths[static_cast<std::size_t>(b)];
    ragged = ragged || l + n_image != max_seq;
    rows_of_sample.push_back(torch::cat(
        {context[b].narrow(0, 0, l), h[b], torch::zeros({max_seq - l - n_image, h.size(2)}, h.options())}, 0));
  }
  h = torch::stack(rows_of_sample);
  // The key mask over the joint sequence is applied only when the samples' lengths differ (as diffusers does).
  torch::Tensor joint_bias;
  if (ragged) {
    std::vector<torch::Tensor> keep;
    for (const int64_t l : lengths) keep.push_back(torch::arange(max_seq, long_options).lt(l + n_image));
    joint_bias = key_bias_of(torch::stack(keep), h.scalar_type());
  }

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto& block = layers[i];
    if (checkpoint) {
      h = diffusers::checkpointed(
          [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
            return impl->forward(v[0], v[1].numel() ? v[1] : torch::Tensor(), Lumina2Rotary{v[2], v[3]}, v[4]);
          },
          {h, joint_bias.defined() ? joint_bias : torch::empty({0}, h.options()), joint_rotary.cos, joint_rotary.sin,
           temb},
          diffusers::trainable_parameters(*block));
    } else {
      h = block->forward(h, joint_bias, joint_rotary, temb);
    }
    if (static_cast<int64_t>(i) == tap) out.tapped = h;
  }

  // LuminaLayerNormContinuous: non-affine LayerNorm (eps 1e-6) · (1 + linear_1(SiLU(temb))), then linear_2.
  const auto scale = norm_out_linear_1(torch::silu(temb).to(h.scalar_type()));
  h = norm_out_linear_2(torch::layer_norm(h, {h.size(-1)}, {}, {}, 1e-6) * (1 + scale.unsqueeze(1)));
  std::vector<torch::Tensor> samples;
  for (int64_t b = 0; b < batch; ++b) {
    const auto tokens = h[b].narrow(0, lengths[static_cast<std::size_t>(b)], n_image);
    samples.push_back(tokens.reshape({grid_h, grid_w, p, p, config.out_channels})
                          .permute({4, 0, 2, 1, 3})
                          .reshape({config.out_channels, height, width}));
  }
  out.prediction = torch::stack(samples);
  return out;
}

}  // namespace repa::models
