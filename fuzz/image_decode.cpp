// Fuzzes decode_image (stb's PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PNM readers behind the project's checks):
// an undecodable file must be an InputError, a decoded one must hold width * height * 3 bytes.
#include <stb/stb_image.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/error.h"
#include "core/data/image.h"
#include "core/data/image_limits.h"

#ifdef REPA_FUZZ_UBSAN_OPTIONS
// Read by UBSan at start-up: the suppression of stb's known report (see fuzz/ubsan_stb.supp).
extern "C" const char* __ubsan_default_options() {
  return REPA_FUZZ_UBSAN_OPTIONS;
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // Headers declaring more than 2^22 pixels are left out: decoding up to the production limit (2^27) is a
  // matter of memory bandwidth, took most of the fuzzer's time, and that limit is tested by
  // tests/data/tst_image_limits.
  int width = 0, height = 0, channels = 0;
  // stbi_info parses a JPEG's Huffman tables too: only after the project's own check says stb may read them.
  if (size <= static_cast<size_t>(INT32_MAX) && repa::data::jpeg_huffman_tables_fit(bytes) &&
      stbi_info_from_memory(data, static_cast<int>(size), &width, &height, &channels) &&
      static_cast<int64_t>(width) * height > (int64_t{1} << 22))
    return 0;
  try {
    const auto image = repa::data::decode_image(bytes, "fuzz-input");
    if (image.width <= 0 || image.height <= 0) __builtin_trap();
    if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3) __builtin_trap();
    if (image.pixels.size() <= (1u << 20)) {
      const auto flipped = repa::data::flip_horizontal(image);
      if (flipped.at(0, 0, 0) != image.at(image.width - 1, 0, 0)) __builtin_trap();
    }
  } catch (const repa::InputError&) {
    // Named: empty, too large or stb's reason.
  }
  return 0;
}
