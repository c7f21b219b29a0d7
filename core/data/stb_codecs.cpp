// The one translation unit that compiles stb's image reader and writer.
#include <cstring>
#include <stdexcept>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "core/base/error.h"
#include "core/data/image.h"
#include "core/data/image_limits.h"
#include "core/io/atomic_file.h"

namespace repa::data {

std::pair<int, int> read_image_size(const std::string& path) {
  int width = 0, height = 0, channels = 0;
  if (!stbi_info(path.c_str(), &width, &height, &channels))
    throw InputError("image '" + path + "' has no readable header (" + std::string(stbi_failure_reason() ? stbi_failure_reason() : "unknown format") + ")");
  return {width, height};
}

Image decode_image(const std::string& bytes, const std::string& name) {
  int width = 0, height = 0, channels = 0;
  if (bytes.empty()) throw InputError("image '" + name + "' is empty (0 bytes)");
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) throw InputError("image '" + name + "' is too large");
  check_image_bytes(bytes, name);
  stbi_uc* data = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                        static_cast<int>(bytes.size()), &width, &height, &channels, 3);
  if (data == nullptr) {
    const char* reason = stbi_failure_reason();
    throw InputError("image '" + name + "' cannot be decoded: " + (reason ? reason : "unknown format"));
  }
  if (width <= 0 || height <= 0) {  // stb accepts some headers of zero width or height (BMP, PNM)
    stbi_image_free(data);
    throw InputError("image '" + name + "' has no pixels (" + std::to_string(width) + "x" + std::to_string(height) +
                     ")");
  }
  Image image(width, height);
  std::memcpy(image.pixels.data(), data, image.pixels.size());
  stbi_image_free(data);
  return image;
}

namespace {
void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
}
}  // namespace

std::string encode_png(const Image& image) {
  std::string out;
  if (image.empty()) throw Error("cannot encode an empty image as PNG");
  if (!stbi_write_png_to_func(append_to_string, &out, image.width, image.height, 3, image.pixels.data(),
                              image.width * 3))
    throw Error("PNG encoding failed for a " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " image");
  return out;
}

void write_png(const std::string& path, const Image& image) { io::write_text_atomically(path, encode_png(image)); }

}  // namespace repa::data
