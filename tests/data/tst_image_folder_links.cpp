// Symbolic links in a dataset folder: a link back to a folder that contains it (a loop) is refused with the
// link named instead of being followed until the path is too long; a link to another folder is followed.
#include <doctest/doctest.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/data/image.h"
#include "core/data/image_folder.h"
#include "tests/test_support.h"

using namespace repa::data;
using repa::test::contains;
using repa::test::error_of;
namespace fs = std::filesystem;

namespace {
Image solid(int size, uint8_t value) {
  Image image(size, size);
  std::fill(image.pixels.begin(), image.pixels.end(), value);
  return image;
}
}  // namespace

TEST_CASE("a symlink loop in the dataset is refused naming the link") {
  repa::test::ScratchDir dir;
  fs::create_directories(dir.path() / "cats" / "inner");
  write_png(dir.file("cats/a.png"), solid(4, 10));
  fs::create_directory_symlink("..", dir.path() / "cats" / "inner" / "up");  // inner/up → cats
  auto message = error_of([&] { scan_image_folder(dir.path().string(), true); });
  CHECK(contains(message, "cats/inner/up"));
  CHECK(contains(message, "symlink loop"));
  CHECK(contains(message, "studio.dataset_dir"));

  fs::remove(dir.path() / "cats" / "inner" / "up");
  fs::create_directory_symlink(dir.path(), dir.path() / "cats" / "root");  // absolute, to the dataset root
  message = error_of([&] { scan_image_folder(dir.path().string(), false); });
  CHECK(contains(message, "cats/root"));
  CHECK(contains(message, "symlink loop"));
}

TEST_CASE("a symlink to a folder outside the loop is followed once") {
  repa::test::ScratchDir dir, elsewhere;
  fs::create_directories(dir.path() / "dogs");
  write_png(dir.file("dogs/a.png"), solid(4, 10));
  write_png(elsewhere.file("b.png"), solid(4, 20));
  fs::create_directory_symlink(elsewhere.path(), dir.path() / "dogs" / "more");
  const auto folder = scan_image_folder(dir.path().string(), true);
  REQUIRE(folder.images.size() == 2);
  CHECK(contains(folder.images[1].path, "dogs/more/b.png"));
  CHECK(folder.images[1].label == 0);
}
