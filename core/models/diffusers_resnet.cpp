#include "core/models/diffusers_resnet.h"

#include <cmath>

namespace repa::models::diffusers {

ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, const ResnetOptions& opts)
    : options(opts) {
  norm1 = register_module("norm1", GroupNorm(opts.groups, in_channels, opts.eps));
  conv1 = register_module("conv1", Conv2d(in_channels, out_channels, 3, 1, 1));
  if (opts.temb_channels > 0) {
    const int64_t proj_out = opts.scale_shift ? 2 * out_channels : out_channels;
    time_emb_proj = register_module("time_emb_proj", Linear(opts.temb_channels, proj_out));
  }
  norm2 = register_module("norm2", GroupNorm(opts.groups, out_channels, opts.eps));
  conv2 = register_module("conv2", Conv2d(out_channels, out_channels, 3, 1, 1));
  if (in_channels != out_channels) {
    conv_shortcut = register_module("conv_shortcut", Conv2d(in_channels, out_channels, 1, 1, 0));
  }
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto h = conv1(apply_activation(options.act, norm1(x)));
  torch::Tensor t;
  if (time_emb_proj && temb.defined()) {
    t = time_emb_proj(apply_activation(options.act, temb)).unsqueeze(-1).unsqueeze(-1);
    if (!options.scale_shift) h = h + t;
  }
  h = norm2(h);
  if (t.defined() && options.scale_shift) {
    auto parts = t.chunk(2, 1);
    h = h * (1 + parts[0]) + parts[1];
  }
  h = apply_activation(options.act, h);
  if (options.dropout > 0.0) h = torch::dropout(h, options.dropout, is_training());
  h = conv2(h);
  auto shortcut = conv_shortcut ? conv_shortcut(x) : x;
  auto out = shortcut + h;
  return options.output_scale_factor == 1.0 ? out : out / options.output_scale_factor;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t pad) : padding(pad) {
  conv = register_module("conv", Conv2d(channels, channels, 3, 2, pad));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  if (padding == 0) return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels) {
  conv = register_module("conv", Conv2d(channels, channels, 3, 1, 1));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, const std::vector<int64_t>& output_size) {
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (output_size.empty()) {
    options.scale_factor(std::vector<double>{2.0, 2.0});
  } else {
    options.size(output_size);
  }
  // Nearest upsampling of bf16 is missing on some backends; diffusers upcasts the same way.
  const auto dtype = x.scalar_type();
  auto in = dtype == torch::kBFloat16 ? x.to(torch::kFloat) : x;
  auto up = F::interpolate(in.contiguous(), options);
  if (dtype == torch::kBFloat16) up = up.to(dtype);
  return conv(up);
}

torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                                 double downscale_freq_shift, double max_period) {
  const int64_t half = dim / 2;
  auto exponent = torch::arange(0, half, torch::TensorOptions().dtype(torch::kFloat).device(timesteps.device()));
  exponent = exponent * (-std::log(max_period)) / (static_cast<double>(half) - downscale_freq_shift);
  auto args = timesteps.reshape({-1, 1}).to(torch::kFloat) * torch::exp(exponent).unsqueeze(0);
  auto emb = torch::cat({torch::sin(args), torch::cos(args)}, -1);
  if (flip_sin_to_cos) emb = torch::cat({emb.narrow(1, half, half), emb.narrow(1, 0, half)}, -1);
  if (dim % 2 == 1) emb = torch::constant_pad_nd(emb, {0, 1}, 0);
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim, Activation activation)
    : act(activation) {
  linear_1 = register_module("linear_1", Linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", Linear(time_embed_dim, time_embed_dim));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) {
  return linear_2(apply_activation(act, linear_1(x)));
}

}  // namespace repa::models::diffusers
