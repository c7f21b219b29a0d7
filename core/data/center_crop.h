// The ADM centre crop that REPA's preprocessing uses (center_crop_arr): halve with a box filter while the
// short side is at least twice the target, resize bicubically so the short side equals the target, then cut
// the centred square. The resampling follows Pillow's separable convolution (support scaled by the
// reduction factor, taps normalised), so results match Pillow's to within rounding.
#pragma once
#include "core/data/image.h"

namespace repa::data {

enum class ResampleFilter { Box, Bicubic, Lanczos };  // Lanczos: PIL LANCZOS (a = 3), as SimpleTuner resizes

// Resizes to width x height with Pillow's convolution resampling for `filter`.
Image resize_image(const Image& image, int width, int height, ResampleFilter filter);

// Where adm_center_crop takes its square from a width x height image: the size of the resized image it cuts
// (after the box halvings and the bicubic resize) and the crop's top-left corner in it. SDXL's time_ids use
// these, as SimpleTuner's use its intermediary size and crop coordinates.
struct CenterCropGeometry {
  int resized_width = 0, resized_height = 0;
  int top = 0, left = 0;
};
CenterCropGeometry adm_center_crop_geometry(int width, int height, int size);

// A size x size crop as REPA's center_crop_arr produces it. Throws InputError when size <= 0.
Image adm_center_crop(const Image& image, int size);

}  // namespace repa::data
