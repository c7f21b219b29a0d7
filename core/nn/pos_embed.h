// Fixed 2-D sine-cosine positions (MAE / DiT / SiT): the first half of the width encodes the column
// index, the second half the row index; each half is [sin(p·ω_0..), cos(p·ω_0..)], ω_i = 10000^(−i/(D/4)).
#pragma once
#include <torch/torch.h>

namespace repa::nn {

// (grid_h·grid_w, embed_dim) in fp32, computed in fp64; rows in row-major token order.
torch::Tensor sincos_2d_position_embedding(int64_t embed_dim, int64_t grid_h, int64_t grid_w);

// (positions.numel(), embed_dim) for 1-D positions.
torch::Tensor sincos_1d_position_embedding(int64_t embed_dim, const torch::Tensor& positions);

}  // namespace repa::nn
