#include "core/align/projector.h"

#include <torch/torch.h>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/nn/linear.h"

namespace repa::align {

ProjectorKind parse_projector_kind(const std::string& name) {
  if (name == "layernorm_linear" || name.empty()) return ProjectorKind::LayerNormLinear;
  if (name == "mlp") return ProjectorKind::Mlp;
  if (name == "conv") return ProjectorKind::Conv;
  throw InputError("projector '" + name + "': expected one of layernorm_linear, mlp, conv");
}

std::string to_string(ProjectorKind kind) {
  switch (kind) {
    case ProjectorKind::LayerNormLinear:
      return "layernorm_linear";
    case ProjectorKind::Mlp:
      return "mlp";
    case ProjectorKind::Conv:
      return "conv";
  }
  return "layernorm_linear";
}

ProjectorImpl::ProjectorImpl(const ProjectorConfig& config) : config_(config) {
  const auto& c = config_;
  if (c.input_dim < 1 || c.output_dim < 1)
    throw InputError("projector: widths must be positive, got input " + std::to_string(c.input_dim) + " and output " +
                     std::to_string(c.output_dim));
  switch (c.kind) {
    case ProjectorKind::LayerNormLinear:
      norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.input_dim}).eps(1e-5)));
      linear = register_module("linear", repa::nn::Linear(c.input_dim, c.output_dim));
      break;
    case ProjectorKind::Mlp:
      if (c.hidden_dim < 1)
        throw InputError("projector_hidden_dim: must be positive, got " + std::to_string(c.hidden_dim));
      fc0 = register_module("0", repa::nn::Linear(c.input_dim, c.hidden_dim));
      fc2 = register_module("2", repa::nn::Linear(c.hidden_dim, c.hidden_dim));
      fc4 = register_module("4", repa::nn::Linear(c.hidden_dim, c.output_dim));
      // REPA's SiT.initialize_weights applies xavier_uniform weights and zero biases to every Linear, the
      // projectors included; LibTorch's default (kaiming_uniform, a = sqrt 5) would start elsewhere.
      for (auto* layer : {&fc0, &fc2, &fc4}) {
        torch::NoGradGuard no_grad;
        torch::nn::init::xavier_uniform_((*layer)->weight);
        torch::nn::init::zeros_((*layer)->bias);
      }
      break;
    case ProjectorKind::Conv:
      if (c.kernel_size < 1 || c.kernel_size % 2 == 0)
        throw InputError("irepa_projector_kernel_size: must be a positive odd number (1, 3, 5, 7), got " +
                         std::to_string(c.kernel_size));
      projection = register_module(
          "projection",
          torch::nn::Conv2d(
              torch::nn::Conv2dOptions(c.input_dim, c.output_dim, c.kernel_size).padding(c.kernel_size / 2)));
      break;
  }
}

torch::Tensor ProjectorImpl::forward(const torch::Tensor& tokens, std::optional<TokenGrid> grid) {
  if (tokens.dim() != 3) throw InputError("projector: expected tokens (B, N, D), got shape " + shape_string(tokens));
  if (tokens.size(2) != config_.input_dim)
    throw InputError("projector: tokens " + shape_string(tokens) + " have width " + std::to_string(tokens.size(2)) +
                     ", the projector expects " + std::to_string(config_.input_dim));
  repa::compat::AutocastDisabled fp32;  // the alignment head stays in fp32 even under mixed precision
  const auto x = tokens.to(torch::kFloat32);
  switch (config_.kind) {
    case ProjectorKind::LayerNormLinear:
      return linear(norm(x));
    case ProjectorKind::Mlp:
      return fc4(torch::silu(fc2(torch::silu(fc0(x)))));
    case ProjectorKind::Conv: {
      const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
      if (!grid) throw InputError("conv projector: the token grid of " + std::to_string(n) + " tokens is unknown");
      if (grid->tokens() != n)
        throw InputError("conv projector: grid " + std::to_string(grid->height) + "x" + std::to_string(grid->width) +
                         " does not hold the " + std::to_string(n) + " tokens of " + shape_string(tokens));
      // Tokens are row-major over the grid, as patch embedding and the mid-block flattening lay them out.
      const auto spatial = x.reshape({b, grid->height, grid->width, d}).permute({0, 3, 1, 2}).contiguous();
      return projection(spatial).permute({0, 2, 3, 1}).reshape({b, n, config_.output_dim});
    }
  }
  return x;
}

}  // namespace repa::align
