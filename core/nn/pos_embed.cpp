#include "core/nn/pos_embed.h"

#include <string>

#include "core/base/error.h"

namespace repa::nn {

torch::Tensor sincos_1d_position_embedding(int64_t embed_dim, const torch::Tensor& positions) {
  if (embed_dim % 2) throw InputError("sin-cos position embedding: width " + std::to_string(embed_dim) + " is odd");
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto omega = 1.0 / torch::pow(10000.0, torch::arange(embed_dim / 2, f64) / (embed_dim / 2.0));
  const auto out = torch::outer(positions.to(torch::kFloat64).reshape({-1}), omega);
  return torch::cat({torch::sin(out), torch::cos(out)}, 1);
}

torch::Tensor sincos_2d_position_embedding(int64_t embed_dim, int64_t grid_h, int64_t grid_w) {
  if (embed_dim % 4)
    throw InputError("2-D sin-cos position embedding: width " + std::to_string(embed_dim) + " is not divisible by 4");
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // Token k = row·grid_w + col; the reference's meshgrid puts the column coordinate first.
  const auto rows = torch::arange(grid_h, f64).repeat_interleave(grid_w);
  const auto cols = torch::arange(grid_w, f64).repeat({grid_h});
  return torch::cat(
             {sincos_1d_position_embedding(embed_dim / 2, cols), sincos_1d_position_embedding(embed_dim / 2, rows)}, 1)
      .to(torch::kFloat32);
}

}  // namespace repa::nn
