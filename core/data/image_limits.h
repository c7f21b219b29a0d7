// Checks on untrusted image bytes made before stb decodes them. Debian's stb_image 2.27 writes past a
// Huffman table when a JPEG's DHT segment declares more than 256 codes (nothings/stb#1289, fixed upstream
// after 2.27), and any format's header may claim a size whose decoding needs gigabytes.
#pragma once
#include <cstdint>
#include <string>

namespace repa::data {

// 2^27 pixels (e.g. 11585 x 11585): above any training image, below the memory a tiny header can demand.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 27;

// Throws InputError naming `name` for a JPEG Huffman table stb would overrun or a declared size above
// kMaxImagePixels. Bytes stb cannot identify pass: decoding names the reason.
void check_image_bytes(const std::string& bytes, const std::string& name);

// False when a JPEG (FF D8 ...) holds a DHT table of more than 256 codes; true for every other input.
bool jpeg_huffman_tables_fit(const std::string& bytes);

}  // namespace repa::data
