// Bringing the diffusion model's tokens and the teacher's tokens to the same count before they are compared,
// the way SimpleTuner does it: equal counts pass through; otherwise both go to the smaller count, bilinearly
// when both grids are known (or both counts are perfect squares), linearly over the flattened sequence
// otherwise; with spatial alignment off both sides are mean-pooled to one token.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace repa::align {

struct TokenGrid {
  int64_t height = 0;
  int64_t width = 0;
  int64_t tokens() const { return height * width; }
  bool operator==(const TokenGrid& o) const { return height == o.height && width == o.width; }
  bool operator!=(const TokenGrid& o) const { return !(*this == o); }
};

// The (height, width) factorisation of `token_count` whose aspect ratio is closest (in log ratio) to the
// reference's; ties go to the smaller height. This is how SimpleTuner infers iREPA grids from the latent
// (or encoder image) shape. Throws InputError when token_count < 1.
TokenGrid infer_token_grid(int64_t token_count, TokenGrid reference = {1, 1});

// Resamples tokens (B, N, D) to `target_tokens`. With both grids given: bilinear from source_grid to
// target_grid. Without grids: bilinear when both counts are perfect squares, else linear over the sequence.
// align_corners is false, as in SimpleTuner.
torch::Tensor interpolate_tokens(const torch::Tensor& tokens, int64_t target_tokens,
                                 std::optional<TokenGrid> source_grid = std::nullopt,
                                 std::optional<TokenGrid> target_grid = std::nullopt);

struct TokenAlignment {
  // false: when counts (or grids) differ, mean-pool both sides to a single token (crepa_spatial_align).
  bool spatial_align = true;
  // Grids of the two sides; when both are given (iREPA) the layouts must match too, and the target is the
  // grid of the side with fewer tokens.
  std::optional<TokenGrid> projected_grid;
  std::optional<TokenGrid> teacher_grid;
};

// Aligns projected (B, Np, D) and teacher (B, Nt, D) tokens; returns both with the same token count.
std::pair<torch::Tensor, torch::Tensor> align_tokens(const torch::Tensor& projected, const torch::Tensor& teacher,
                                                     const TokenAlignment& how);

// iREPA's spatial z-score of teacher tokens (B, N, D): per image and channel over the tokens,
// (x - alpha * mean) / (std + eps), std with Bessel's correction when N > 1.
torch::Tensor spatial_zscore(const torch::Tensor& features, double alpha, double eps = 1e-6);

std::string shape_string(const torch::Tensor& t);  // "[2, 16, 8]", for messages

}  // namespace repa::align
