#include "core/encoders/preprocessing.h"

#include <torch/torch.h>

#include "core/base/error.h"

namespace repa::encoders {
namespace {

torch::Tensor normalise(const torch::Tensor& pixels) {
  auto opts = torch::TensorOptions().dtype(pixels.scalar_type()).device(pixels.device());
  auto mean = torch::tensor({kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]}, opts.dtype(torch::kFloat64))
                  .to(opts)
                  .view({1, 3, 1, 1});
  auto std = torch::tensor({kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]}, opts.dtype(torch::kFloat64))
                 .to(opts)
                 .view({1, 3, 1, 1});
  return (pixels - mean) / std;
}

void check_pixels(const torch::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(1) != 3)
    throw InputError("encoder input must be images of shape (B,3,H,W), got " + std::string(c10::str(pixels.sizes())));
  if (!pixels.is_floating_point()) throw InputError("encoder input must be floating-point pixels in [0,1]");
}

}  // namespace

Preprocessing parse_preprocessing(const std::string& name) {
  if (name == "simpletuner") return Preprocessing::SimpleTuner;
  if (name == "repa") return Preprocessing::Repa;
  throw InputError("studio.encoder_preprocessing: expected \"simpletuner\" or \"repa\", got \"" + name + "\"");
}

std::string to_string(Preprocessing preprocessing) {
  return preprocessing == Preprocessing::SimpleTuner ? "simpletuner" : "repa";
}

torch::Tensor preprocess_simpletuner(const torch::Tensor& pixels, int64_t image_size) {
  check_pixels(pixels);
  if (image_size <= 0) throw InputError("encoder image size must be positive, got " + std::to_string(image_size));
  auto resized = at::upsample_bilinear2d(pixels, {image_size, image_size}, /*align_corners=*/false);
  return normalise(resized);
}

int64_t repa_encoder_input_size(int64_t resolution) {
  if (resolution < 256)
    throw InputError("the REPA preprocessing needs images of at least 256 px (it resizes to 224 per 256 px), got " +
                     std::to_string(resolution));
  return 224 * (resolution / 256);
}

torch::Tensor preprocess_repa(const torch::Tensor& pixels) {
  check_pixels(pixels);
  const auto side = repa_encoder_input_size(pixels.size(-1));
  return at::upsample_bicubic2d(normalise(pixels), {side, side}, /*align_corners=*/false);
}

}  // namespace repa::encoders
