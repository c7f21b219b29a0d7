// Between 8-bit images and the float tensors models see: (3,H,W) in [-1,1], as REPA's x / 127.5 - 1.
#pragma once
#include <torch/types.h>

#include "core/data/image.h"

namespace repa::data {

torch::Tensor image_to_tensor(const Image& image);  // (3,H,W) float32 in [-1,1]

// A batch (B,3,H,W) in [-1,1] (values outside are clipped) tiled into a grid image of `columns` columns.
Image tensor_grid_to_image(const torch::Tensor& batch, int columns, int padding = 2);

}  // namespace repa::data
