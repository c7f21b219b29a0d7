// SiT / DiT: a patch transformer with adaLN-Zero blocks, fixed 2-D sin-cos positions, timestep and label
// embedders. Children carry the official REPA checkpoint's names (x_embedder.proj, t_embedder.mlp.0,
// y_embedder.embedding_table, blocks.N.{attn,mlp,adaLN_modulation}, final_layer, projectors.N, pos_embed),
// so named_parameters() + named_buffers() is that checkpoint's key set.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/nn/attention.h"
#include "core/nn/embeddings.h"
#include "core/nn/mlp.h"
#include "core/nn/patch_embed.h"
#include "core/nn/linear.h"

namespace repa::models {

struct SiTConfig {
  int64_t input_size = 32;  // latent height = width
  int64_t in_channels = 4;
  int64_t patch_size = 2;
  int64_t depth = 12;
  int64_t hidden_size = 768;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  int64_t num_classes = 1000;
  double class_dropout_prob = 0.1;  // > 0 adds the null label row (index num_classes) for CFG
  bool learn_sigma = false;         // DiT's variance channels: output 2·in_channels
  std::vector<int64_t> z_dims;      // REPA's in-model projectors (one per target width); empty = none
  int64_t projector_dim = 2048;
  bool bf16_autocast = false;  // CUDA only: the forward runs under a bf16 autocast scope

  // The REPA/DiT sizes: S (12×384, 6 heads), B (12×768, 12), L (24×1024, 16), XL (28×1152, 16).
  static SiTConfig preset(const std::string& size, int64_t patch_size);
  // From a resolved run config: studio.sit_size (or "custom" with studio.depth/hidden_size/num_heads),
  // studio.patch_size, studio.mlp_ratio, studio.class_dropout_prob; mixed_precision "bf16" turns on
  // bf16_autocast. The latent side, channels and class count come from the data.
  static SiTConfig from_json(const nlohmann::json& config, int64_t input_size, int64_t in_channels,
                             int64_t num_classes);
  // From the keyword arguments of REPA's SiT constructor (input_size, patch_size, depth, ..., z_dims).
  static SiTConfig from_repa_kwargs(const nlohmann::json& kwargs);

  int64_t out_channels() const { return learn_sigma ? 2 * in_channels : in_channels; }
  int64_t grid_size() const { return input_size / patch_size; }
  void validate() const;  // throws InputError naming the bad field
};

// The 0-based block whose output the alignment taps: crepa_block_index when crepa_enabled, else -1.
// Throws InputError when the index is past the model's depth.
int64_t tap_block_from_json(const nlohmann::json& config, const SiTConfig& sit);

struct SiTBlockImpl : torch::nn::Module {
  SiTBlockImpl(int64_t hidden_size, int64_t num_heads, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);

  nn::Attention attn{nullptr};
  nn::Mlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(SiTBlock);

struct SiTFinalLayerImpl : torch::nn::Module {
  SiTFinalLayerImpl(int64_t hidden_size, int64_t patch_size, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);

  repa::nn::Linear linear{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(SiTFinalLayer);

struct SiTOutput {
  torch::Tensor prediction;  // (N, out_channels, H, W)
  torch::Tensor hidden;      // (N, T, D) output of the tapped block; undefined when none was asked
};

struct SiTImpl : torch::nn::Module {
  explicit SiTImpl(const SiTConfig& config);

  // x (N, C, H, W) latents; t (N,) times (SiT: in [0, 1]); y (N,) labels, num_classes = the null label.
  // tap_block: 0-based block whose output is returned in `hidden` (REPA's encoder_depth k is k − 1), -1 none.
  // Label dropout applies in train() mode; force_drop (N,) drops chosen labels in any mode.
  SiTOutput forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y, int64_t tap_block = -1,
                    const std::optional<torch::Tensor>& force_drop = std::nullopt);

  // REPA's projector outputs for tapped hidden states (N, T, D) → one (N, T, z_dim) per projector.
  std::vector<torch::Tensor> project(const torch::Tensor& hidden);

  // Initialisation of the reference: xavier-uniform linears, zero adaLN and output layers, N(0, 0.02)
  // label table and timestep MLP; pos_embed is the fixed sin-cos table.
  void reset_parameters();

  torch::Tensor unpatchify(const torch::Tensor& tokens) const;

  SiTConfig config;
  nn::PatchEmbed x_embedder{nullptr};
  nn::TimestepEmbedder t_embedder{nullptr};
  nn::LabelEmbedder y_embedder{nullptr};
  torch::Tensor pos_embed;  // buffer (1, T, D)
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ModuleList projectors{nullptr};
  SiTFinalLayer final_layer{nullptr};
};
TORCH_MODULE(SiT);

// Loads a safetensors checkpoint (or sharded index) into `model`. Tensor names may carry `prefix`
// (stripped, e.g. "ema." or "param."). Projector tensors are skipped when the model has none; every other
// mismatch (missing, unexpected, wrong shape) is named in one InputError.
void load_sit_checkpoint(SiT& model, const std::string& path, const std::string& prefix = "");

}  // namespace repa::models
