#include "core/data/image_limits.h"

#include <stb/stb_image.h>

#include <climits>

#include "core/base/error.h"

namespace repa::data {

bool jpeg_huffman_tables_fit(const std::string& bytes) {
  const std::size_t size = bytes.size();
  // stb reads zeros past the end of the data; so does this scan.
  const auto byte = [&](std::size_t i) -> unsigned { return i < size ? static_cast<unsigned char>(bytes[i]) : 0u; };
  // stb takes fill bytes (0xFF) before the start-of-image marker as well.
  if (size < 4 || byte(0) != 0xFF) return true;
  std::size_t at = 1;
  while (at < size && byte(at) == 0xFF) ++at;
  if (byte(at) != 0xD8) return true;
  ++at;
  while (at + 1 < size) {
    // Between segments (and through entropy-coded data, where 0xFF is always followed by 0x00 or a restart
    // marker) look for the next marker.
    if (byte(at) != 0xFF) {
      ++at;
      continue;
    }
    const unsigned marker = byte(at + 1);
    if (marker == 0xFF) {
      ++at;  // a fill byte
      continue;
    }
    if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += 2;  // no length follows these
      continue;
    }
    if (marker == 0xD9) break;  // end of image
    const std::size_t length = (byte(at + 2) << 8) | byte(at + 3);
    const std::size_t end = at + 2 + length;
    if (marker == 0xC4) {
      // Tables as stb reads them: class/index byte, 16 code counts, then that many symbol values.
      for (std::size_t table = at + 4; table < end && table < size;) {
        std::size_t codes = 0;
        for (std::size_t i = 0; i < 16; ++i) codes += byte(table + 1 + i);
        if (codes > 256) return false;
        table += 17 + codes;
      }
    }
    at = end;
  }
  return true;
}

void check_image_bytes(const std::string& bytes, const std::string& name) {
  if (!jpeg_huffman_tables_fit(bytes))
    throw InputError("image '" + name + "' cannot be decoded: a JPEG Huffman table declares more than 256 codes");
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return;  // decode_image refuses it by name
  int width = 0, height = 0, channels = 0;
  if (stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &width,
                            &height, &channels) &&
      static_cast<int64_t>(width) * height > kMaxImagePixels)
    throw InputError("image '" + name + "' declares " + std::to_string(width) + "x" + std::to_string(height) +
                     " pixels, more than the " + std::to_string(kMaxImagePixels) + " an image may have");
  // stb 2.27 removes a PSD's white matte from every pixel of a file with 4 or more channels by converting
  // floats below 0 to unsigned char, undefined behaviour (found by the image fuzzer, F11): such files are refused.
  if (bytes.size() >= 26 && bytes.compare(0, 4, "8BPS") == 0) {
    const unsigned psd_channels =
        (static_cast<unsigned char>(bytes[12]) << 8) | static_cast<unsigned char>(bytes[13]);
    if (psd_channels >= 4)
      throw InputError("image '" + name + "' is a Photoshop file with " + std::to_string(psd_channels) +
                       " channels (transparency), which the decoder cannot read safely; save it as PNG");
  }
}

}  // namespace repa::data
