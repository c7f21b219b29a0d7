// The trainable head that maps diffusion-model tokens (B, N, D_h) to the teacher's width (B, N, D_enc).
// Three kinds, with parameter names as their reference checkpoints use them:
//   layernorm_linear  SimpleTuner's default: LayerNorm(D_h, eps 1e-5) + Linear  → norm.*, linear.*
//   mlp               the REPA paper's Linear-SiLU-Linear-SiLU-Linear (REPA's build_mlp) → 0.*, 2.*, 4.*,
//                     initialised as REPA does: xavier_uniform weights, zero biases
//   conv              iREPA's Conv2d(kernel k, padding k/2) over the token grid → projection.*
// A projector always computes in fp32, also inside an autocast region.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/align/token_aligner.h"
#include "core/nn/linear.h"

namespace repa::align {

enum class ProjectorKind { LayerNormLinear, Mlp, Conv };

ProjectorKind parse_projector_kind(const std::string& name);  // InputError naming the choices
std::string to_string(ProjectorKind kind);

struct ProjectorConfig {
  ProjectorKind kind = ProjectorKind::LayerNormLinear;
  int64_t input_dim = 0;      // D_h: the diffusion model's hidden width (or mid-block channels)
  int64_t output_dim = 0;     // D_enc: the teacher's width
  int64_t hidden_dim = 2048;  // mlp only
  int64_t kernel_size = 3;    // conv only: 1, 3, 5 or 7
};

struct ProjectorImpl : torch::nn::Module {
  explicit ProjectorImpl(const ProjectorConfig& config);

  // tokens (B, N, D_h) → (B, N, D_enc) in fp32. The conv kind needs the token grid (height·width = N).
  torch::Tensor forward(const torch::Tensor& tokens, std::optional<TokenGrid> grid = std::nullopt);

  const ProjectorConfig& config() const { return config_; }

  ProjectorConfig config_;
  // layernorm_linear
  torch::nn::LayerNorm norm{nullptr};
  repa::nn::Linear linear{nullptr};
  // mlp (REPA's Sequential indices 0, 2, 4; 1 and 3 are the SiLUs)
  repa::nn::Linear fc0{nullptr}, fc2{nullptr}, fc4{nullptr};
  // conv
  torch::nn::Conv2d projection{nullptr};
};
TORCH_MODULE(Projector);

}  // namespace repa::align
