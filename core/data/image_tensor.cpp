#include "core/data/image_tensor.h"

#include <torch/torch.h>

#include "core/base/error.h"

namespace repa::data {

torch::Tensor image_to_tensor(const Image& image) {
  auto bytes = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width, 3},
                                torch::kUInt8);
  return bytes.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
}

Image tensor_grid_to_image(const torch::Tensor& batch, int columns, int padding) {
  if (batch.dim() != 4 || batch.size(1) != 3)
    throw Error("a sample grid needs images of shape (B,3,H,W), got " + std::to_string(batch.dim()) + " dims");
  const auto count = batch.size(0);
  const int h = static_cast<int>(batch.size(2)), w = static_cast<int>(batch.size(3));
  columns = std::max(1, std::min<int>(columns, static_cast<int>(count)));
  const int rows = static_cast<int>((count + columns - 1) / columns);
  Image grid(columns * (w + padding) + padding, rows * (h + padding) + padding);
  std::fill(grid.pixels.begin(), grid.pixels.end(), uint8_t{255});
  const auto bytes = batch.detach().to(torch::kCPU, torch::kFloat32).clamp(-1, 1).add(1).mul(127.5).round()
                         .to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  const uint8_t* data = bytes.data_ptr<uint8_t>();
  for (int64_t k = 0; k < count; ++k) {
    const int ox = padding + static_cast<int>(k % columns) * (w + padding);
    const int oy = padding + static_cast<int>(k / columns) * (h + padding);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) grid.at(ox + x, oy + y, c) = data[((k * h + y) * w + x) * 3 + c];
  }
  return grid;
}

}  // namespace repa::data
