#include "core/models/diffusers_blocks.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/models/diffusers_checkpointing.h"

namespace repa::models::diffusers {
namespace {

torch::Tensor run_resnet(ResnetBlock2D& resnet, const torch::Tensor& x, const torch::Tensor& temb, bool checkpoint) {
  if (!checkpoint) return resnet->forward(x, temb);
  std::vector<torch::Tensor> inputs{x};
  if (temb.defined()) inputs.push_back(temb);
  return checkpointed(
      [impl = resnet.ptr()](const std::vector<torch::Tensor>& in) {
        return impl->forward(in[0], in.size() > 1 ? in[1] : torch::Tensor());
      },
      inputs, trainable_parameters(*resnet));
}

Attention make_spatial_attention(int64_t channels, const BlockOptions& options) {
  AttentionOptions a;
  a.query_dim = channels;
  const int64_t head_dim = options.spatial_head_dim > 0 ? options.spatial_head_dim : channels;
  if (channels % head_dim != 0) {
    throw InputError(options.type + ": " + std::to_string(channels) + " channels are not divisible by the " +
                     "attention head dim " + std::to_string(head_dim) + " (attention_head_dim)");
  }
  a.heads = channels / head_dim;
  a.dim_head = head_dim;
  a.bias = true;
  a.upcast = true;
  a.norm_groups = options.spatial_norm_groups == 0 ? options.resnet.groups
                                                  : std::max<int64_t>(options.spatial_norm_groups, 0);
  a.norm_eps = options.resnet.eps;
  a.residual_connection = true;
  a.rescale_output_factor = options.resnet.output_scale_factor;
  return Attention(a);
}

Transformer2DModel make_transformer(int64_t channels, const BlockOptions& options) {
  TransformerOptions t = options.transformer;
  if (t.heads <= 0 || channels % t.heads != 0) {
    throw InputError(options.type + ": " + std::to_string(channels) + " channels are not divisible into " +
                     std::to_string(t.heads) + " attention heads (attention_head_dim / num_attention_heads)");
  }
  t.dim_head = channels / t.heads;
  t.norm_groups = options.resnet.groups;
  return Transformer2DModel(channels, t);
}

// Registers the attention ModuleList of a block and fills the typed vectors that forward() uses.
void add_attention(torch::nn::Module& block, torch::nn::ModuleList& list, int64_t channels,
                   const BlockOptions& options, std::vector<Transformer2DModel>& transformers,
                   std::vector<Attention>& spatial) {
  if (options.attention == BlockAttention::Cross) {
    transformers.push_back(make_transformer(channels, options));
    list->push_back(transformers.back());
  } else if (options.attention == BlockAttention::Spatial) {
    spatial.push_back(make_spatial_attention(channels, options));
    list->push_back(spatial.back());
  }
  (void)block;
}

torch::Tensor run_attention(std::size_t i, const std::vector<Transformer2DModel>& transformers,
                            const std::vector<Attention>& spatial, const torch::Tensor& x,
                            const torch::Tensor& context) {
  if (!transformers.empty()) return transformers[i].ptr()->forward(x, context);
  if (!spatial.empty()) return spatial[i].ptr()->forward(x);
  return x;
}

void set_transformer_checkpointing(std::vector<Transformer2DModel>& transformers, bool on) {
  for (auto& t : transformers) t->gradient_checkpointing = on;
}

}  // namespace

BlockAttention down_block_attention(const std::string& type, const std::string& key) {
  if (type == "DownBlock2D" || type == "DownEncoderBlock2D") return BlockAttention::None;
  if (type == "CrossAttnDownBlock2D") return BlockAttention::Cross;
  if (type == "AttnDownBlock2D" || type == "AttnDownEncoderBlock2D") return BlockAttention::Spatial;
  throw InputError("config key '" + key + "': unsupported down block type '" + type +
                   "' (supported: DownBlock2D, CrossAttnDownBlock2D, AttnDownBlock2D, DownEncoderBlock2D, "
                   "AttnDownEncoderBlock2D)");
}

BlockAttention up_block_attention(const std::string& type, const std::string& key) {
  if (type == "UpBlock2D" || type == "UpDecoderBlock2D") return BlockAttention::None;
  if (type == "CrossAttnUpBlock2D") return BlockAttention::Cross;
  if (type == "AttnUpBlock2D" || type == "AttnUpDecoderBlock2D") return BlockAttention::Spatial;
  throw InputError("config key '" + key + "': unsupported up block type '" + type +
                   "' (supported: UpBlock2D, CrossAttnUpBlock2D, AttnUpBlock2D, UpDecoderBlock2D, "
                   "AttnUpDecoderBlock2D)");
}

DownBlockImpl::DownBlockImpl(int64_t in_channels, int64_t out_channels, bool add_downsample,
                             int64_t downsample_padding, const BlockOptions& opts)
    : options(opts) {
  auto resnet_list = register_module("resnets", torch::nn::ModuleList());
  torch::nn::ModuleList attention_list;
  if (opts.attention != BlockAttention::None) attention_list = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < opts.num_layers; ++i) {
    resnets.push_back(ResnetBlock2D(i == 0 ? in_channels : out_channels, out_channels, opts.resnet));
    resnet_list->push_back(resnets.back());
    add_attention(*this, attention_list, out_channels, opts, transformers, spatial_attentions);
  }
  if (add_downsample) {
    downsampler = Downsample2D(out_channels, downsample_padding);
    register_module("downsamplers", torch::nn::ModuleList())->push_back(downsampler);
  }
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> DownBlockImpl::forward(const torch::Tensor& x,
                                                                             const torch::Tensor& temb,
                                                                             const torch::Tensor& context) {
  const bool checkpoint = checkpointing_active(*this, gradient_checkpointing);
  std::vector<torch::Tensor> skips;
  auto h = x;
  for (std::size_t i = 0; i < resnets.size(); ++i) {
    h = run_resnet(resnets[i], h, temb, checkpoint);
    h = run_attention(i, transformers, spatial_attentions, h, context);
    skips.push_back(h);
  }
  if (downsampler) {
    h = downsampler(h);
    skips.push_back(h);
  }
  return {h, skips};
}

void DownBlockImpl::set_gradient_checkpointing(bool on) {
  gradient_checkpointing = on;
  set_transformer_checkpointing(transformers, on);
}

UpBlockImpl::UpBlockImpl(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels, bool add_upsample,
                         bool skips, const BlockOptions& opts)
    : options(opts), uses_skips(skips) {
  auto resnet_list = register_module("resnets", torch::nn::ModuleList());
  torch::nn::ModuleList attention_list;
  if (opts.attention != BlockAttention::None) attention_list = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < opts.num_layers; ++i) {
    int64_t resnet_in = i == 0 ? in_channels : out_channels;
    if (skips) {
      // The last resnet takes the skip from the down block's input, the others from its resnets.
      const int64_t skip_channels = i == opts.num_layers - 1 ? in_channels : out_channels;
      resnet_in = (i == 0 ? prev_output_channels : out_channels) + skip_channels;
    }
    resnets.push_back(ResnetBlock2D(resnet_in, out_channels, opts.resnet));
    resnet_list->push_back(resnets.back());
    add_attention(*this, attention_list, out_channels, opts, transformers, spatial_attentions);
  }
  if (add_upsample) {
    upsampler = Upsample2D(out_channels);
    register_module("upsamplers", torch::nn::ModuleList())->push_back(upsampler);
  }
}

torch::Tensor UpBlockImpl::forward(const torch::Tensor& x, std::vector<torch::Tensor>& skips, const torch::Tensor& temb,
                                   const torch::Tensor& context, const std::vector<int64_t>& upsample_size) {
  const bool checkpoint = checkpointing_active(*this, gradient_checkpointing);
  auto h = x;
  for (std::size_t i = 0; i < resnets.size(); ++i) {
    if (uses_skips) {
      if (skips.empty()) throw Error(options.type + ": ran out of skip connections");
      h = torch::cat({h, skips.back()}, 1);
      skips.pop_back();
    }
    h = run_resnet(resnets[i], h, temb, checkpoint);
    h = run_attention(i, transformers, spatial_attentions, h, context);
  }
  if (upsampler) h = upsampler(h, upsample_size);
  return h;
}

void UpBlockImpl::set_gradient_checkpointing(bool on) {
  gradient_checkpointing = on;
  set_transformer_checkpointing(transformers, on);
}

MidBlockImpl::MidBlockImpl(int64_t ch, const BlockOptions& opts) : options(opts), channels(ch) {
  auto resnet_list = register_module("resnets", torch::nn::ModuleList());
  torch::nn::ModuleList attention_list;
  if (opts.attention != BlockAttention::None) attention_list = register_module("attentions", torch::nn::ModuleList());
  resnets.push_back(ResnetBlock2D(ch, ch, opts.resnet));
  resnet_list->push_back(resnets.back());
  for (int64_t i = 0; i < opts.num_layers; ++i) {
    add_attention(*this, attention_list, ch, opts, transformers, spatial_attentions);
    resnets.push_back(ResnetBlock2D(ch, ch, opts.resnet));
    resnet_list->push_back(resnets.back());
  }
}

torch::Tensor MidBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context) {
  const bool checkpoint = checkpointing_active(*this, gradient_checkpointing);
  auto h = run_resnet(resnets[0], x, temb, checkpoint);
  for (std::size_t i = 1; i < resnets.size(); ++i) {
    h = run_attention(i - 1, transformers, spatial_attentions, h, context);
    h = run_resnet(resnets[i], h, temb, checkpoint);
  }
  return h;
}

void MidBlockImpl::set_gradient_checkpointing(bool on) {
  gradient_checkpointing = on;
  set_transformer_checkpointing(transformers, on);
}

}  // namespace repa::models::diffusers
