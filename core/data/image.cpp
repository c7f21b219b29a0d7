#include "core/data/image.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/base/error.h"

namespace repa::data {

Image read_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("image '" + path + "' cannot be opened");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_image(bytes, path);
}

Image flip_horizontal(const Image& image) {
  Image out(image.width, image.height);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c) out.at(x, y, c) = image.at(image.width - 1 - x, y, c);
  return out;
}

bool has_image_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* const kKnown[] = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tga", ".ppm", ".pgm"};
  return std::any_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return ext == k; });
}

}  // namespace repa::data
