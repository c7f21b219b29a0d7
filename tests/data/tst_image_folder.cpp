// Image folders: class labels from sub-folders, corrupt files kept aside by name, content hashes.
#include <doctest/doctest.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/data/image.h"
#include "core/data/image_folder.h"
#include "tests/test_support.h"

using namespace repa::data;
namespace fs = std::filesystem;

namespace {
Image solid(int size, uint8_t value) {
  Image image(size, size);
  std::fill(image.pixels.begin(), image.pixels.end(), value);
  return image;
}
}  // namespace

TEST_CASE("labels come from the first sub-folder level, sorted by class name") {
  repa::test::ScratchDir dir;
  fs::create_directories(dir.path() / "zebra" / "deeper");
  fs::create_directories(dir.path() / "ant");
  write_png(dir.file("zebra/a.png"), solid(4, 10));
  write_png(dir.file("zebra/deeper/b.png"), solid(4, 20));
  write_png(dir.file("ant/c.png"), solid(4, 30));
  repa::test::write_bytes(dir.file("ant/notes.txt"), "not an image");
  auto folder = scan_image_folder(dir.path().string(), true);
  REQUIRE(folder.class_names.size() == 2);
  CHECK(folder.class_names[0] == "ant");
  CHECK(folder.class_names[1] == "zebra");
  REQUIRE(folder.images.size() == 3);
  CHECK(folder.images[0].label == 0);
  CHECK(folder.images[1].label == 1);
  CHECK(folder.images[2].label == 1);

  const auto unlabelled = scan_image_folder(dir.path().string(), false);
  CHECK(unlabelled.class_names.empty());
  CHECK(unlabelled.images[0].label == -1);
}

TEST_CASE("corrupt and truncated files are skipped and listed by name with the reason") {
  repa::test::ScratchDir dir;
  fs::create_directories(dir.path() / "a");
  write_png(dir.file("a/good1.png"), solid(8, 50));
  write_png(dir.file("a/good2.png"), solid(8, 60));
  repa::test::write_bytes(dir.file("a/garbage.png"), "this is not a png at all");
  auto bytes = repa::test::read_bytes(dir.file("a/good1.png"));
  repa::test::write_bytes(dir.file("a/truncated.png"), bytes.substr(0, bytes.size() / 3));
  repa::test::write_bytes(dir.file("a/empty.jpg"), "");
  auto folder = scan_image_folder(dir.path().string(), true);
  CHECK(folder.images.size() == 5);
  prepare_image_folder(folder, 2);
  REQUIRE(folder.images.size() == 2);
  CHECK(folder.images[0].path.find("good1.png") != std::string::npos);
  REQUIRE(folder.corrupt.size() == 3);
  std::string names;
  for (const auto& bad : folder.corrupt) names += bad.path + " (" + bad.reason + ")\n";
  CHECK(names.find("garbage.png") != std::string::npos);
  CHECK(names.find("truncated.png") != std::string::npos);
  CHECK(names.find("empty.jpg") != std::string::npos);
  // Two files with equal bytes share the hash; different bytes do not.
  CHECK(folder.images[0].content_hash.size() == 32);
  CHECK(folder.images[0].content_hash != folder.images[1].content_hash);
  CHECK(content_hash("abc") == content_hash(std::string("abc")));
}

TEST_CASE("a folder with no usable image, a missing folder and a loose file are errors that say so") {
  repa::test::ScratchDir dir;
  CHECK_THROWS_WITH_AS(scan_image_folder(dir.file("nope"), true), doctest::Contains("is not a folder"),
                       repa::InputError);
  CHECK_THROWS_WITH_AS(scan_image_folder(dir.path().string(), true), doctest::Contains("holds no image files"),
                       repa::InputError);
  write_png(dir.file("loose.png"), solid(4, 1));
  CHECK_THROWS_WITH_AS(scan_image_folder(dir.path().string(), true), doctest::Contains("loose.png"),
                       repa::InputError);
  fs::remove(dir.file("loose.png"));
  fs::create_directories(dir.path() / "c");
  repa::test::write_bytes(dir.file("c/bad.png"), "xx");
  auto folder = scan_image_folder(dir.path().string(), true);
  CHECK_THROWS_WITH_AS(prepare_image_folder(folder, 1), doctest::Contains("bad.png"), repa::InputError);
}

TEST_CASE("PNG round trip through stb keeps every pixel; flips mirror columns") {
  repa::test::ScratchDir dir;
  Image image(3, 2);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 13);
  write_png(dir.file("x.png"), image);
  const Image back = read_image(dir.file("x.png"));
  CHECK(back.width == 3);
  CHECK(back.height == 2);
  CHECK((back.pixels == image.pixels));
  const Image flipped = flip_horizontal(image);
  CHECK(flipped.at(0, 1, 2) == image.at(2, 1, 2));
  CHECK(flipped.at(2, 0, 0) == image.at(0, 0, 0));
}
