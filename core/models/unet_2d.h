// diffusers' UNet2DModel (v0.21 layout): the unconditional or class-conditional UNet with self-attention
// blocks (AttnDownBlock2D/AttnUpBlock2D), the shape of a from-scratch U-REPA run.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/models/unet_body.h"

namespace repa::models {

struct UNet2DConfig {
  nlohmann::json source;
  int64_t sample_size = 32;
  int64_t in_channels = 3, out_channels = 3;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0.0;
  std::vector<std::string> down_block_types, up_block_types;
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 2;
  double mid_block_scale_factor = 1.0;
  int64_t downsample_padding = 1;
  double dropout = 0.0;
  std::string act_fn = "silu";
  int64_t attention_head_dim = 8;  // 0: one head over all channels
  int64_t norm_num_groups = 32;
  int64_t attn_norm_num_groups = 0;  // 0: norm_num_groups
  double norm_eps = 1e-5;
  bool resnet_scale_shift = false;
  bool add_attention = true;
  std::string class_embed_type;  // "", "timestep", "identity"
  int64_t num_class_embeds = 0;

  static UNet2DConfig from_json(const nlohmann::json& config);
};

struct UNet2DModelImpl : UNetBodyImpl {
  explicit UNet2DModelImpl(const UNet2DConfig& config);

  // sample (B, in, H, W); timestep () or (B,); class_labels (B,) when the config has class embeddings.
  UNetOutput forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                     const torch::Tensor& class_labels = {});

  UNet2DConfig config;
  int64_t time_embed_dim = 0;
  diffusers::TimestepEmbedding time_embedding{nullptr};
  diffusers::Embedding class_embedding_table{nullptr};
  diffusers::TimestepEmbedding class_embedding_mlp{nullptr};
};
TORCH_MODULE(UNet2DModel);

UNet2DModel load_unet_2d(const std::string& folder);

}  // namespace repa::models
