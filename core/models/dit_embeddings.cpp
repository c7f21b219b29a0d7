#include "core/models/dit_embeddings.h"

#include <cmath>
#include <string>

#include "core/base/error.h"

namespace repa::models::dit {

torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double downscale_freq_shift,
                                double scale, double max_period) {
  if (t.dim() != 1) throw InputError("timestep: expected a 1-D tensor (B,), got " + c10::str(t.sizes()));
  const int64_t half = dim / 2;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  const auto exponent =
      -std::log(max_period) * torch::arange(half, f32) / (static_cast<double>(half) - downscale_freq_shift);
  auto args = t.unsqueeze(1).to(torch::kFloat32) * torch::exp(exponent).unsqueeze(0);
  if (scale != 1.0) args = scale * args;
  auto emb = flip_sin_to_cos ? torch::cat({torch::cos(args), torch::sin(args)}, -1)
                             : torch::cat({torch::sin(args), torch::cos(args)}, -1);
  if (dim % 2) emb = torch::nn::functional::pad(emb, torch::nn::functional::PadFuncOptions({0, 1, 0, 0}));
  return emb;
}

namespace {

torch::Tensor sincos_1d(int64_t embed_dim, const torch::Tensor& positions) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(positions.device());
  const auto omega = 1.0 / torch::pow(10000.0, torch::arange(embed_dim / 2, f64) / (embed_dim / 2.0));
  const auto out = torch::outer(positions.reshape({-1}).to(torch::kFloat64), omega);
  return torch::cat({torch::sin(out), torch::cos(out)}, 1);
}

}  // namespace

torch::Tensor sincos_2d_position_table(int64_t embed_dim, int64_t grid_h, int64_t grid_w, double base_size,
                                       double interpolation_scale) {
  if (embed_dim % 4)
    throw InputError("2-D sin-cos positions: width " + std::to_string(embed_dim) + " is not divisible by 4");
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // The reference divides in fp32 twice; the fp32 rounding of the coordinates is part of the table.
  const auto rows = torch::arange(grid_h, f32) / (static_cast<double>(grid_h) / base_size) / interpolation_scale;
  const auto cols = torch::arange(grid_w, f32) / (static_cast<double>(grid_w) / base_size) / interpolation_scale;
  const auto row_of_token = rows.repeat_interleave(grid_w), col_of_token = cols.repeat({grid_h});
  return torch::cat({sincos_1d(embed_dim / 2, col_of_token), sincos_1d(embed_dim / 2, row_of_token)}, 1)
      .to(torch::kFloat32);
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim, int64_t out_dim, bool bias) {
  linear_1 = register_module("linear_1", diffusers::Linear(in_channels, time_embed_dim, bias));
  linear_2 =
      register_module("linear_2", diffusers::Linear(time_embed_dim, out_dim > 0 ? out_dim : time_embed_dim, bias));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) {
  return linear_2(torch::silu(linear_1(x)));
}

TextProjectionImpl::TextProjectionImpl(int64_t in_features, int64_t hidden_size, int64_t out_features,
                                       const std::string& act)
    : act_fn(act) {
  if (act != "gelu_tanh" && act != "silu" && act != "silu_fp32")
    throw InputError("caption projection: unknown activation '" + act + "' (expected gelu_tanh, silu or silu_fp32)");
  linear_1 = register_module("linear_1", diffusers::Linear(in_features, hidden_size));
  linear_2 = register_module("linear_2", diffusers::Linear(hidden_size, out_features > 0 ? out_features : hidden_size));
}

torch::Tensor TextProjectionImpl::forward(const torch::Tensor& caption) {
  auto h = linear_1(caption);
  if (act_fn == "gelu_tanh") {
    h = torch::gelu(h, "tanh");
  } else if (act_fn == "silu") {
    h = torch::silu(h);
  } else {
    h = torch::silu(h.to(torch::kFloat32)).to(h.scalar_type());
  }
  return linear_2(h);
}

CombinedTimestepSizeEmbeddingsImpl::CombinedTimestepSizeEmbeddingsImpl(int64_t embedding_dim, bool additional)
    : use_additional_conditions(additional) {
  timestep_embedder = register_module("timestep_embedder", TimestepEmbedding(256, embedding_dim));
  if (additional) {
    if (embedding_dim % 3)
      throw InputError("PixArt size conditions: the width " + std::to_string(embedding_dim) +
                       " is not divisible by 3 (resolution takes 2/3 of it, aspect ratio 1/3)");
    resolution_embedder = register_module("resolution_embedder", TimestepEmbedding(256, embedding_dim / 3));
    aspect_ratio_embedder = register_module("aspect_ratio_embedder", TimestepEmbedding(256, embedding_dim / 3));
  }
}

torch::Tensor CombinedTimestepSizeEmbeddingsImpl::forward(const torch::Tensor& timestep,
                                                          const torch::Tensor& resolution,
                                                          const torch::Tensor& aspect_ratio,
                                                          torch::ScalarType hidden_dtype) {
  const auto t = timestep_embedder(timestep_features(timestep, 256, true, 0).to(hidden_dtype));
  if (!use_additional_conditions) return t;
  if (!resolution.defined() || !aspect_ratio.defined())
    throw InputError(
        "PixArt: use_additional_conditions is on, so resolution (B, 2) and aspect_ratio (B, 1) are "
        "required (added_cond_kwargs)");
  const int64_t batch = t.size(0);
  const auto res = resolution_embedder(timestep_features(resolution.flatten(), 256, true, 0).to(hidden_dtype));
  const auto ar = aspect_ratio_embedder(timestep_features(aspect_ratio.flatten(), 256, true, 0).to(hidden_dtype));
  return t + torch::cat({res.reshape({batch, -1}), ar.reshape({batch, -1})}, 1);
}

AdaLayerNormSingleImpl::AdaLayerNormSingleImpl(int64_t embedding_dim, bool use_additional_conditions) {
  emb = register_module("emb", CombinedTimestepSizeEmbeddings(embedding_dim, use_additional_conditions));
  linear = register_module("linear", diffusers::Linear(embedding_dim, 6 * embedding_dim));
}

std::pair<torch::Tensor, torch::Tensor> AdaLayerNormSingleImpl::forward(const torch::Tensor& timestep,
                                                                        const torch::Tensor& resolution,
                                                                        const torch::Tensor& aspect_ratio,
                                                                        torch::ScalarType hidden_dtype) {
  auto embedded = emb(timestep, resolution, aspect_ratio, hidden_dtype);
  return {linear(torch::silu(embedded)), embedded};
}

PatchEmbedImpl::PatchEmbedImpl(const PatchEmbedOptions& opts) : options(opts) {
  if (opts.patch_size <= 0) throw InputError("patch embedding: patch_size must be positive");
  proj = register_module(
      "proj", diffusers::Conv2d(opts.in_channels, opts.embed_dim, opts.patch_size, opts.patch_size, 0, opts.bias));
  if (opts.layer_norm) norm = register_module("norm", diffusers::LayerNorm(opts.embed_dim, 1e-6, false));
  if (opts.sincos && opts.pos_embed_max_size > 0) {
    const double base = static_cast<double>(opts.height / opts.patch_size);
    pos_embed =
        register_buffer("pos_embed", sincos_2d_position_table(opts.embed_dim, opts.pos_embed_max_size,
                                                              opts.pos_embed_max_size, base, opts.interpolation_scale)
                                         .unsqueeze(0));
  }
}

torch::Tensor PatchEmbedImpl::cropped_pos_embed(int64_t grid_h, int64_t grid_w) const {
  const int64_t m = options.pos_embed_max_size;
  if (grid_h > m || grid_w > m)
    throw InputError("patch embedding: a " + std::to_string(grid_h) + "x" + std::to_string(grid_w) +
                     " token grid is larger than pos_embed_max_size " + std::to_string(m));
  const int64_t top = (m - grid_h) / 2, left = (m - grid_w) / 2;
  return pos_embed.reshape({1, m, m, -1})
      .narrow(1, top, grid_h)
      .narrow(2, left, grid_w)
      .reshape({1, grid_h * grid_w, -1});
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& latent) {
  const int64_t p = options.patch_size;
  if (latent.dim() != 4 || latent.size(1) != options.in_channels)
    throw InputError("patch embedding: expected hidden_states (B, " + std::to_string(options.in_channels) +
                     ", H, W), got " + c10::str(latent.sizes()));
  if (latent.size(2) % p || latent.size(3) % p)
    throw InputError("patch embedding: hidden_states " + std::to_string(latent.size(2)) + "x" +
                     std::to_string(latent.size(3)) + " is not divisible by patch_size " + std::to_string(p));
  const int64_t grid_h = latent.size(2) / p, grid_w = latent.size(3) / p;
  auto tokens = proj(latent).flatten(2).transpose(1, 2);
  if (norm) tokens = norm(tokens);
  if (!options.sincos) return tokens.contiguous();
  torch::Tensor positions;
  if (options.pos_embed_max_size > 0) {
    positions = cropped_pos_embed(grid_h, grid_w);
  } else {
    positions = sincos_2d_position_table(options.embed_dim, grid_h, grid_w, static_cast<double>(options.height / p),
                                         options.interpolation_scale)
                    .to(latent.device())
                    .unsqueeze(0);
  }
  return (tokens + positions).to(tokens.scalar_type());
}

}  // namespace repa::models::dit
