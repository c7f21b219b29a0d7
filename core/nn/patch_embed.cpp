#include "core/nn/patch_embed.h"

#include <string>

#include "core/base/error.h"

namespace repa::nn {

PatchEmbedImpl::PatchEmbedImpl(int64_t channels, int64_t embed_dim, int64_t patch)
    : in_channels(channels), patch_size(patch) {
  if (patch <= 0) throw InputError("patch embedding: patch_size must be positive, got " + std::to_string(patch));
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, embed_dim, patch).stride(patch)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != in_channels)
    throw InputError("patch embedding: expected input (B, " + std::to_string(in_channels) + ", H, W), got " +
                     c10::str(x.sizes()));
  if (x.size(2) % patch_size || x.size(3) % patch_size)
    throw InputError("patch embedding: input " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                     " is not divisible by patch_size " + std::to_string(patch_size));
  // Contiguous (B, S, D): a transposed view would make the first residual add, and so the whole residual
  // stream after it, channel-major, and every LayerNorm would then copy its input.
  return proj->forward(x).flatten(2).transpose(1, 2).contiguous();
}

}  // namespace repa::nn
