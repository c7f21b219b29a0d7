// Hostile image bytes are refused by name before stb decodes them: a JPEG Huffman table of more than 256 codes
// (stb 2.27 writes past its tables) and a header that declares more pixels than an image may have. The inputs
// are the fuzzer's reproducers and seeds in fuzz/corpus/image_decode/.
#include <doctest/doctest.h>

#include <string>

#include "core/data/image.h"
#include "core/data/image_limits.h"
#include "tests/test_support.h"

using repa::test::contains;
using repa::test::error_of;

namespace {
std::string corpus(const std::string& name) {
  return repa::test::read_bytes(repa::test::source_path("fuzz/corpus/image_decode/" + name));
}
}  // namespace

TEST_CASE("a JPEG whose Huffman table declares more than 256 codes is refused by name") {
  const std::string bytes = corpus("jpeg_dht_over_256_codes.jpg");
  CHECK_FALSE(repa::data::jpeg_huffman_tables_fit(bytes));
  const std::string message = error_of([&] { repa::data::decode_image(bytes, "bad.jpg"); });
  CHECK(contains(message, "bad.jpg"));
  CHECK(contains(message, "more than 256 codes"));
}

TEST_CASE("fill bytes before the start-of-image marker do not hide an oversized Huffman table") {
  // stb skips 0xFF fill bytes before SOI; the first version of the check did not (a fuzzer finding).
  const std::string bytes = corpus("jpeg_fill_before_soi_dht_over_256.jpg");
  CHECK(bytes.compare(0, 3, "\xFF\xFF\xD8") == 0);
  CHECK_FALSE(repa::data::jpeg_huffman_tables_fit(bytes));
  CHECK(contains(error_of([&] { repa::data::decode_image(bytes, "fill.jpg"); }), "more than 256 codes"));
  const std::string valid = corpus("q90_8x6.jpg");
  CHECK(repa::data::decode_image("\xFF\xFF" + valid, "filled.jpg").width == 8);
}

TEST_CASE("valid JPEGs pass the Huffman check and decode") {
  for (const char* name : {"q90_8x6.jpg", "q10_3x5_gray.jpg"}) {
    const std::string bytes = corpus(name);
    CHECK(repa::data::jpeg_huffman_tables_fit(bytes));
    const auto image = repa::data::decode_image(bytes, name);
    CHECK(image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * 3);
  }
  CHECK(repa::data::decode_image(corpus("q90_8x6.jpg"), "a").width == 8);
  CHECK(repa::data::decode_image(corpus("q10_3x5_gray.jpg"), "b").height == 5);
}

TEST_CASE("a table of exactly 256 codes is allowed, 257 is not") {
  // SOI, then one DHT segment: class/index byte, 16 counts, the symbol values.
  const auto jpeg_with_table = [](int codes_of_length_8, int codes_of_length_9) {
    std::string table(1, '\x10');
    for (int i = 0; i < 16; ++i)
      table += static_cast<char>(i == 7 ? codes_of_length_8 : i == 8 ? codes_of_length_9 : 0);
    table += std::string(static_cast<std::size_t>(codes_of_length_8 + codes_of_length_9), '\x01');
    const std::size_t length = table.size() + 2;
    return std::string("\xFF\xD8\xFF\xC4", 4) + static_cast<char>(length >> 8) + static_cast<char>(length & 0xFF) +
           table + std::string("\xFF\xD9", 2);
  };
  CHECK(repa::data::jpeg_huffman_tables_fit(jpeg_with_table(255, 1)));
  CHECK_FALSE(repa::data::jpeg_huffman_tables_fit(jpeg_with_table(255, 2)));
  CHECK(repa::data::jpeg_huffman_tables_fit("not a jpeg at all"));
}

TEST_CASE("a header that declares more pixels than an image may have is refused before decoding") {
  for (const char* name : {"psd_huge_declared_size.psd", "psd_slow_huge_rle.psd", "tga_slow_huge.tga"}) {
    const std::string message = error_of([&] { repa::data::decode_image(corpus(name), name); });
    INFO(name, ": ", message);
    CHECK(contains(message, name));
    CHECK(contains(message, "pixels, more than the 134217728"));
  }
}

TEST_CASE("an image of zero width is refused, not copied from a null buffer") {
  const std::string message = error_of([&] { repa::data::decode_image(corpus("bad_bmp_zero_width.bmp"), "zero.bmp"); });
  CHECK(contains(message, "zero.bmp"));
  CHECK(contains(message, "has no pixels (0x"));
}

TEST_CASE("a Photoshop file with an alpha channel is refused instead of decoded with undefined arithmetic") {
  const std::string message =
      error_of([&] { repa::data::decode_image(corpus("psd_matte_float_to_uchar.psd"), "layers.psd"); });
  CHECK(contains(message, "layers.psd"));
  CHECK(contains(message, "Photoshop file with 8 channels"));
  // Three channels (RGB) still decode: the same file with its channel count set to 3.
  std::string rgb = corpus("psd_matte_float_to_uchar.psd");
  rgb[13] = 3;
  CHECK_FALSE(contains(error_of([&] { (void)repa::data::decode_image(rgb, "rgb.psd"); }), "Photoshop"));
}
