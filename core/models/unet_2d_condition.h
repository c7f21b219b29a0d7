// diffusers' UNet2DConditionModel (v0.21 layout), built from its config.json: the SD 1.x / SD 2.x / SDXL /
// Kolors UNets. Parameter names are diffusers', so their checkpoints load as they are.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/models/unet_body.h"

namespace repa::models {

struct UNet2DConditionConfig {
  nlohmann::json source;  // the config as read
  int64_t in_channels = 4, out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0.0;
  std::vector<std::string> down_block_types, up_block_types;
  std::vector<int64_t> block_out_channels;
  std::vector<int64_t> layers_per_block;              // per down block
  std::vector<int64_t> transformer_layers_per_block;  // per down block
  std::vector<int64_t> cross_attention_dim;           // per down block
  std::vector<int64_t> num_attention_heads;           // per down block (diffusers' "attention_head_dim" quirk)
  std::vector<int64_t> attention_head_dim;            // per down block, for self-attention-only blocks
  std::vector<bool> only_cross_attention;             // per down block
  bool use_linear_projection = false;
  bool upcast_attention = false;
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool resnet_scale_shift = false;
  double dropout = 0.0;
  int64_t time_embedding_dim = 0;  // 0: 4 × block_out_channels[0]
  int64_t conv_in_kernel = 3, conv_out_kernel = 3;
  std::string class_embed_type;    // "", "timestep", "identity", "projection"
  int64_t num_class_embeds = 0;
  bool class_embeddings_concat = false;
  std::string addition_embed_type; // "" or "text_time"
  int64_t addition_time_embed_dim = 0;
  int64_t projection_class_embeddings_input_dim = 0;
  int64_t encoder_hid_dim = 0;     // > 0 with encoder_hid_dim_type "text_proj" (Kolors)
  int64_t sample_size = 64;

  // Parses diffusers' keys; InputError naming the key for wrong types and for values this project does not build.
  static UNet2DConditionConfig from_json(const nlohmann::json& config);
};

// The extra conditioning some configs need; unused members stay undefined.
struct UNetConditioning {
  torch::Tensor class_labels;  // (B,) for class_embed_type/num_class_embeds
  torch::Tensor text_embeds;   // (B, D) pooled text embedding, addition_embed_type "text_time"
  torch::Tensor time_ids;      // (B, 6) SDXL size/crop conditioning, addition_embed_type "text_time"
};

struct UNet2DConditionModelImpl : UNetBodyImpl {
  explicit UNet2DConditionModelImpl(const UNet2DConditionConfig& config);

  // sample (B, in, H, W); timestep () or (B,) (integer or float); encoder_hidden_states (B, T, cross_dim).
  UNetOutput forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                     const torch::Tensor& encoder_hidden_states, const UNetConditioning& conditioning = {});

  // The time embedding (B, temb) for these timesteps and conditions; what every ResNet block receives.
  torch::Tensor time_embedding_of(const torch::Tensor& timestep, int64_t batch, torch::Dtype dtype,
                                  const UNetConditioning& conditioning);

  UNet2DConditionConfig config;
  int64_t time_embed_dim = 0;
  diffusers::TimestepEmbedding time_embedding{nullptr};
  diffusers::Embedding class_embedding_table{nullptr};          // num_class_embeds
  diffusers::TimestepEmbedding class_embedding_mlp{nullptr};    // "timestep" / "projection"
  diffusers::TimestepEmbedding add_embedding{nullptr};          // "text_time"
  diffusers::Linear encoder_hid_proj{nullptr};                  // "text_proj"
};
TORCH_MODULE(UNet2DConditionModel);

// Builds the model from a diffusers folder (config.json + diffusion_pytorch_model.safetensors or its sharded
// index) and loads its weights; every missing, unexpected or mis-shaped tensor is named.
UNet2DConditionModel load_unet_2d_condition(const std::string& folder);
// The same with the folder's config.json already read (a caller that checked it first does not parse it twice).
UNet2DConditionModel load_unet_2d_condition(const std::string& folder, const UNet2DConditionConfig& config);

}  // namespace repa::models
