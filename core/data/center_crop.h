// The ADM centre crop that REPA's preprocessing uses (center_crop_arr): halve with a box filter while the
// short side is at least twice the target, resize bicubically so the short side equals the target, then cut
// the centred square. The resampling follows Pillow's separable convolution (support scaled by the
// reduction factor, taps normalised), so results match Pillow's to within rounding.
#pragma once
#include "core/data/image.h"

namespace repa::data {

enum class ResampleFilter { Box, Bicubic };

// Resizes to width x height with Pillow's convolution resampling for `filter`.
Image resize_image(const Image& image, int width, int height, ResampleFilter filter);

// A size x size crop as REPA's center_crop_arr produces it. Throws InputError when size <= 0.
Image adm_center_crop(const Image& image, int size);

}  // namespace repa::data
