#include "core/data/center_crop.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/base/error.h"

namespace repa::data {

namespace {

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

// Keys' cubic with a = -0.5, as Pillow's BICUBIC.
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Pillow's LANCZOS: sinc(x)·sinc(x/3) on [-3, 3).
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczos_filter(double x) { return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0; }

struct Taps {
  int first = 0;
  std::vector<double> weights;
};

// One output coordinate's input window and normalised weights (Pillow's precompute_coeffs).
std::vector<Taps> precompute_taps(int in_size, int out_size, ResampleFilter filter) {
  const double support_unit =
      filter == ResampleFilter::Box ? 0.5 : filter == ResampleFilter::Lanczos ? 3.0 : 2.0;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = support_unit * filter_scale;
  std::vector<Taps> taps(static_cast<std::size_t>(out_size));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size);
    Taps& t = taps[static_cast<std::size_t>(xx)];
    t.first = xmin;
    double total = 0.0;
    for (int x = xmin; x < xmax; ++x) {
      const double arg = (x - center + 0.5) / filter_scale;
      const double w = filter == ResampleFilter::Box       ? box_filter(arg)
                       : filter == ResampleFilter::Lanczos ? lanczos_filter(arg)
                                                           : bicubic_filter(arg);
      t.weights.push_back(w);
      total += w;
    }
    if (total != 0.0)
      for (double& w : t.weights) w /= total;
  }
  return taps;
}

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

}  // namespace

Image resize_image(const Image& image, int width, int height, ResampleFilter filter) {
  if (width <= 0 || height <= 0) throw InputError("resize to a non-positive size");
  if (width == image.width && height == image.height) return image;
  // Horizontal pass then vertical pass, each rounded to 8 bits as Pillow does between passes.
  const auto htaps = precompute_taps(image.width, width, filter);
  Image horizontal(width, image.height);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < width; ++x) {
      const Taps& t = htaps[static_cast<std::size_t>(x)];
      for (int c = 0; c < 3; ++c) {
        double sum = 0.0;
        for (std::size_t k = 0; k < t.weights.size(); ++k) sum += t.weights[k] * image.at(t.first + int(k), y, c);
        horizontal.at(x, y, c) = to_byte(sum);
      }
    }
  if (height == image.height) return horizontal;
  const auto vtaps = precompute_taps(image.height, height, filter);
  Image out(width, height);
  for (int y = 0; y < height; ++y) {
    const Taps& t = vtaps[static_cast<std::size_t>(y)];
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) {
        double sum = 0.0;
        for (std::size_t k = 0; k < t.weights.size(); ++k) sum += t.weights[k] * horizontal.at(x, t.first + int(k), c);
        out.at(x, y, c) = to_byte(sum);
      }
  }
  return out;
}

CenterCropGeometry adm_center_crop_geometry(int width, int height, int size) {
  if (size <= 0) throw InputError("crop size must be positive, got " + std::to_string(size));
  while (std::min(width, height) >= 2 * size) {
    width /= 2;
    height /= 2;
  }
  const double scale = static_cast<double>(size) / std::min(width, height);
  CenterCropGeometry g;
  g.resized_width = static_cast<int>(std::nearbyint(width * scale));
  g.resized_height = static_cast<int>(std::nearbyint(height * scale));
  g.top = (g.resized_height - size) / 2;
  g.left = (g.resized_width - size) / 2;
  return g;
}

Image adm_center_crop(const Image& image, int size) {
  if (size <= 0) throw InputError("crop size must be positive, got " + std::to_string(size));
  if (image.empty()) throw InputError("cannot crop an empty image");
  Image current = image;
  while (std::min(current.width, current.height) >= 2 * size)
    current = resize_image(current, current.width / 2, current.height / 2, ResampleFilter::Box);
  const double scale = static_cast<double>(size) / std::min(current.width, current.height);
  // Python's round() is half-to-even; std::nearbyint in the default rounding mode is the same.
  const int w = static_cast<int>(std::nearbyint(current.width * scale));
  const int h = static_cast<int>(std::nearbyint(current.height * scale));
  current = resize_image(current, w, h, ResampleFilter::Bicubic);
  const int top = (current.height - size) / 2;
  const int left = (current.width - size) / 2;
  Image out(size, size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) out.at(x, y, c) = current.at(left + x, top + y, c);
  return out;
}

}  // namespace repa::data
