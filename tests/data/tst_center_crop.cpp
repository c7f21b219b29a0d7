// The ADM centre crop against Pillow: the expected pixels below were produced by REPA's center_crop_arr
// (Pillow 9.4, BOX halving then BICUBIC) on the same synthetic images; Pillow rounds in fixed point, so a
// difference of one level is allowed.
#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include "core/base/error.h"
#include "core/data/center_crop.h"

using repa::data::Image;

namespace {

Image synthetic(int w, int h) {
  Image image(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) image.at(x, y, c) = static_cast<uint8_t>((x * 37 + y * 91 + c * 53 + (x * y) % 17) % 256);
  return image;
}

std::vector<int> parse(const char* text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
  return out;
}

void check_against_pillow(int w, int h, int size, const char* expected_text) {
  const Image crop = repa::data::adm_center_crop(synthetic(w, h), size);
  const auto expected = parse(expected_text);
  REQUIRE(crop.width == size);
  REQUIRE(crop.height == size);
  REQUIRE(expected.size() == crop.pixels.size());
  int worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(int(crop.pixels[i]) - expected[i]));
  CHECK(worst <= 1);
}

}  // namespace

TEST_CASE("box halving then bicubic downscale then centre crop matches Pillow (50x23 -> 10)") {
  check_against_pillow(50, 23, 10,
      "98,125,151,118,136,156,157,145,82,115,102,124,110,153,156,125,121,109,129,123,112,96,137,129,144,151,126,107,"
      "135,101,166,117,99,99,126,154,118,134,153,163,151,89,123,110,133,119,160,162,128,126,112,129,126,125,103,140,"
      "177,163,155,115,143,140,135,164,116,97,97,124,153,123,139,159,163,150,88,107,95,130,117,155,160,131,132,118,"
      "126,124,112,106,140,138,107,126,144,141,136,135,166,120,101,100,124,150,118,136,156,119,110,95,104,92,126,117,"
      "150,155,132,136,101,123,123,130,126,121,112,109,143,133,146,124,120,150,116,113,103,121,152,142,119,140,103,"
      "102,101,127,125,133,127,137,102,125,117,123,133,129,109,118,110,118,119,153,125,140,127,121,149,86,119,107,124,"
      "142,149,145,141,118,120,107,100,123,146,129,159,123,134,141,150,116,132,103,121,138,143,134,168,117,145,114,"
      "121,129,101,130,128,160,144,144,131,125,95,112,127,132,138,139,111,144,141,136,153,124,117,146,102,114,127,140,"
      "127,166,107,140,107,114,129,94,130,120,157,140,151,131,122,112,96,125,138,90,114,109,120,173,139,154,146,117,"
      "104,99,119,118,149,133,175,112,141,110,118,131,94,131,124,159,144,151,134,125,130,147,103,139,79,121,102,122,"
      "130,152,154,140,116,103,99,120,117,153,132,175,109,144,112,120,130,94,130,123,159,143");
}

TEST_CASE("box halving alone, then a crop of the wider side, matches Pillow (13x9 -> 4)") {
  check_against_pillow(13, 9, 4,
      "140,129,118,151,140,129,71,124,177,146,135,124,117,128,138,109,119,130,135,146,113,119,129,139,91,144,197,163,"
      "152,141,146,71,124,94,147,136,146,71,124,90,143,132,138,127,116,146,71,124");
}

TEST_CASE("a small image is upscaled bicubically as Pillow does (7x5 -> 9)") {
  check_against_pillow(7, 5, 9,
      "24,77,128,43,96,157,63,116,189,83,146,212,103,177,230,122,198,255,144,218,255,177,255,112,205,225,18,52,114,"
      "172,77,139,160,102,158,133,123,140,144,143,116,169,168,132,201,179,157,201,152,189,109,139,175,55,110,174,242,"
      "137,208,161,163,225,34,186,126,26,205,10,63,242,17,85,234,51,103,107,73,111,27,91,126,184,120,167,155,125,122,"
      "101,153,45,108,95,47,137,26,79,168,37,106,170,68,136,94,96,176,48,127,181,228,41,64,145,14,86,13,53,107,5,75,"
      "128,43,96,149,64,117,170,85,138,192,106,159,231,128,181,204,126,63,100,97,59,134,44,90,175,50,127,209,81,166,"
      "219,111,200,150,143,201,93,174,126,123,200,80,127,49,113,168,76,138,182,105,159,192,128,170,226,148,182,235,"
      "160,219,120,171,213,23,193,87,40,212,5,72,110,172,231,137,204,182,164,223,94,198,155,99,208,76,129,130,94,108,"
      "60,115,90,73,83,103,98,67,125,149,202,255,173,237,179,195,255,37,233,144,26,239,15,68,110,21,102,0,59,132,4,82,"
      "144,32,107,159");
}

TEST_CASE("box halving averages each 2x2 block, worked by hand") {
  Image image(4, 2);
  const int values[2][4] = {{0, 10, 100, 200}, {20, 30, 50, 50}};
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) image.at(x, y, c) = static_cast<uint8_t>(values[y][x] + c);
  const Image half = repa::data::resize_image(image, 2, 1, repa::data::ResampleFilter::Box);
  CHECK(half.at(0, 0, 0) == 15);   // (0+10+20+30)/4
  CHECK(half.at(1, 0, 0) == 100);  // (100+200+50+50)/4
  CHECK(half.at(1, 0, 2) == 102);
}

TEST_CASE("a crop of an image already at the target size is the image itself; bad sizes are refused") {
  const Image image = synthetic(6, 6);
  CHECK((repa::data::adm_center_crop(image, 6).pixels == image.pixels));
  CHECK_THROWS_AS(repa::data::adm_center_crop(image, 0), repa::InputError);
}
