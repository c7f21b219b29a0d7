// Turning images into what a DINOv2 teacher reads. Two recipes, selectable (studio.encoder_preprocessing):
//  - "simpletuner": pixels in [0,1] → bilinear resize to S×S (align_corners false, no antialias) → ImageNet
//    mean/std. S is crepa_encoder_image_size (SimpleTuner's default 518, the native 37×37 grid).
//  - "repa": pixels in [0,1] → ImageNet mean/std → bicubic resize to 224·(R/256) (R = the image width),
//    as the REPA code's preprocess_raw_image does; the encoder's positional table is resampled once to the
//    matching 16·(R/256) grid.
#pragma once
#include <torch/types.h>

#include <string>

namespace repa::encoders {

enum class Preprocessing { SimpleTuner, Repa };

Preprocessing parse_preprocessing(const std::string& name);  // throws InputError naming the value
std::string to_string(Preprocessing preprocessing);

inline constexpr double kImageNetMean[3] = {0.485, 0.456, 0.406};
inline constexpr double kImageNetStd[3] = {0.229, 0.224, 0.225};

// (B,3,H,W) in [0,1] → (B,3,S,S) normalised.
torch::Tensor preprocess_simpletuner(const torch::Tensor& pixels, int64_t image_size);
// (B,3,R,R) in [0,1] → (B,3,224·(R/256),224·(R/256)) normalised; R must be at least 256.
torch::Tensor preprocess_repa(const torch::Tensor& pixels);
// The REPA recipe's encoder input side for images of `resolution` pixels.
int64_t repa_encoder_input_size(int64_t resolution);

}  // namespace repa::encoders
