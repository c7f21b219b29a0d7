// Image → patch tokens: a stride-p convolution named `proj` (timm's PatchEmbed), then (B, h·w, D).
#pragma once
#include <torch/torch.h>

namespace repa::nn {

struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int64_t in_channels, int64_t embed_dim, int64_t patch_size);
  // x (B, C, H, W) with H, W divisible by the patch (checked, with the sizes named) → (B, H/p·W/p, D).
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_channels, patch_size;
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

}  // namespace repa::nn
