// The down, mid and up blocks of diffusers' UNets and VAE, selected by the type names their configs use:
// DownBlock2D, CrossAttnDownBlock2D, AttnDownBlock2D, DownEncoderBlock2D; UpBlock2D, CrossAttnUpBlock2D,
// AttnUpBlock2D, UpDecoderBlock2D; UNetMidBlock2DCrossAttn, UNetMidBlock2D. Children carry diffusers'
// names (resnets.N, attentions.N, downsamplers.0, upsamplers.0).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/models/diffusers_attention.h"
#include "core/models/diffusers_resnet.h"

namespace repa::models::diffusers {

enum class BlockAttention {
  None,     // resnets only
  Cross,    // Transformer2DModel after each resnet (cross-attention to the text context)
  Spatial,  // diffusers' Attention with its own GroupNorm and residual (AttnDownBlock2D, VAE mid block)
};

struct BlockOptions {
  std::string type;  // the diffusers block type name, for messages
  BlockAttention attention = BlockAttention::None;
  int64_t num_layers = 1;
  ResnetOptions resnet;
  TransformerOptions transformer;   // Cross: heads, dim_head, layers, cross_attention_dim, ...
  int64_t spatial_head_dim = 0;     // Spatial: heads = channels / spatial_head_dim
  int64_t spatial_norm_groups = 0;  // Spatial: GroupNorm groups of the attention (0: resnet.groups, -1: none)
};

// Reads a block type name (the entry `key` of the config) into its attention kind and whether it is an
// encoder/decoder block without time embedding; throws InputError naming the key for unsupported types.
BlockAttention down_block_attention(const std::string& type, const std::string& key);
BlockAttention up_block_attention(const std::string& type, const std::string& key);

struct DownBlockImpl : torch::nn::Module {
  DownBlockImpl(int64_t in_channels, int64_t out_channels, bool add_downsample, int64_t downsample_padding,
                const BlockOptions& options);
  // Returns the block output and the skip tensors (one per resnet, plus one after the downsampler).
  std::pair<torch::Tensor, std::vector<torch::Tensor>> forward(const torch::Tensor& x, const torch::Tensor& temb,
                                                                const torch::Tensor& context);
  int64_t num_resnets() const { return static_cast<int64_t>(resnets.size()); }
  void set_gradient_checkpointing(bool on);

  BlockOptions options;
  bool gradient_checkpointing = false;
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> transformers;
  std::vector<Attention> spatial_attentions;
  Downsample2D downsampler{nullptr};
};
TORCH_MODULE(DownBlock);

struct UpBlockImpl : torch::nn::Module {
  // `prev_output_channels` is the width coming from below; `skip_in_channels` the width of the matching
  // down block's input. Decoder blocks (no skips) pass 0 for both and chain in_channels → out_channels.
  UpBlockImpl(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels, bool add_upsample,
              bool uses_skips, const BlockOptions& options);
  // Consumes skip tensors from the back of `skips`; `upsample_size` ({} = x2) for odd-sized inputs.
  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>& skips, const torch::Tensor& temb,
                        const torch::Tensor& context, const std::vector<int64_t>& upsample_size = {});
  int64_t num_resnets() const { return static_cast<int64_t>(resnets.size()); }
  void set_gradient_checkpointing(bool on);

  BlockOptions options;
  bool uses_skips;
  bool gradient_checkpointing = false;
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> transformers;
  std::vector<Attention> spatial_attentions;
  Upsample2D upsampler{nullptr};
};
TORCH_MODULE(UpBlock);

// resnet → (attention → resnet) × num_layers; the UNet's mid block, whose output U-REPA aligns.
struct MidBlockImpl : torch::nn::Module {
  MidBlockImpl(int64_t channels, const BlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context);
  void set_gradient_checkpointing(bool on);

  BlockOptions options;
  int64_t channels;
  bool gradient_checkpointing = false;
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> transformers;
  std::vector<Attention> spatial_attentions;
};
TORCH_MODULE(MidBlock);

}  // namespace repa::models::diffusers
