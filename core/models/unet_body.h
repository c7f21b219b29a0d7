// What UNet2DConditionModel and UNet2DModel share: conv_in → down blocks → mid block → up blocks →
// GroupNorm/act/conv_out, with skip connections, the mid-block tap, and the memory options.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/models/diffusers_blocks.h"

namespace repa::models {

// The prediction and the mid block's output (B, C, h, w), the tensor U-REPA aligns. Both float32.
struct UNetOutput {
  torch::Tensor sample;
  torch::Tensor mid_block;
};

struct UNetMemoryOptions {
  bool channels_last = false;          // 4-D weights and activations in NHWC (faster convs on CUDA)
  bool autocast_bf16 = false;          // CUDA only: matmuls and convs in bf16 inside forward
  bool gradient_checkpointing = false; // ResNet and transformer blocks rerun in backward
};

// Everything the body needs to build itself, already resolved from a config.
struct UNetBodySpec {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  std::vector<int64_t> block_out_channels;
  std::vector<diffusers::BlockOptions> down;  // one per down block
  std::vector<diffusers::BlockOptions> up;    // one per up block (in up order)
  diffusers::BlockOptions mid;
  int64_t downsample_padding = 1;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  diffusers::Activation act = diffusers::Activation::SiLU;
};

struct UNetBodyImpl : torch::nn::Module {
  // The body's children are registered by build_body(), after the subclass's time/class embeddings, so
  // that named_parameters() follows diffusers' order.
  void build_body(const UNetBodySpec& spec);

  // conv_in … conv_out given the time embedding `emb` (B, temb) and the cross-attention context (or undefined).
  UNetOutput run_body(const torch::Tensor& sample, const torch::Tensor& emb, const torch::Tensor& context);

  // The mid block's output shape for an input of (batch, in_channels, height, width), from the built blocks.
  std::vector<int64_t> mid_block_shape(int64_t batch, int64_t height, int64_t width) const;

  void set_memory_options(const UNetMemoryOptions& options);
  const UNetMemoryOptions& memory_options() const { return memory_; }

  // Casts and lays out the input as the memory options ask; opens the autocast region in forward().
  torch::Tensor prepare_input(const torch::Tensor& sample) const;

  int64_t num_parameters() const;

  UNetBodySpec spec;
  diffusers::Conv2d conv_in{nullptr}, conv_out{nullptr};
  std::vector<diffusers::DownBlock> down_blocks;
  diffusers::MidBlock mid_block{nullptr};
  std::vector<diffusers::UpBlock> up_blocks;
  diffusers::GroupNorm conv_norm_out{nullptr};
  int64_t num_upsamplers = 0;

 protected:
  UNetMemoryOptions memory_;
};

}  // namespace repa::models
