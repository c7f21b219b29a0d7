// Decoded images as the data pipeline passes them around: 8-bit RGB, row-major, interleaved (H, W, 3).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace repa::data {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // height * width * 3 bytes

  Image() = default;
  Image(int w, int h) : width(w), height(h), pixels(static_cast<std::size_t>(w) * h * 3, 0) {}
  bool empty() const { return width == 0 || height == 0; }
  uint8_t& at(int x, int y, int c) { return pixels[(static_cast<std::size_t>(y) * width + x) * 3 + c]; }
  uint8_t at(int x, int y, int c) const { return pixels[(static_cast<std::size_t>(y) * width + x) * 3 + c]; }
};

// Decodes PNG, JPEG, BMP, GIF, TGA, PSD, HDR or PNM bytes (what stb reads) into RGB. Throws InputError naming
// `name` and stb's reason when the bytes are not a readable image.
Image decode_image(const std::string& bytes, const std::string& name);
Image read_image(const std::string& path);  // the file's bytes, decoded
// Width and height from the file's header, without decoding the pixels; InputError naming the file when stb
// cannot read the header.
std::pair<int, int> read_image_size(const std::string& path);

// PNG bytes of `image`; write_png stores them atomically.
std::string encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);

Image flip_horizontal(const Image& image);

// The image file extensions the folder scan picks up (lower case, with the dot).
bool has_image_extension(const std::string& path);

}  // namespace repa::data
