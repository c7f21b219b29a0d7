// Captions by SimpleTuner's strategies (file name, sidecar text file, instance prompt) and a metadata.jsonl,
// the prefix and prepend_instance_prompt, and the named errors: parquet, a missing sidecar, a caption file
// that is not UTF-8 (with the byte offset), a metadata.jsonl without the image. The demo dataset's captions.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/base/error.h"
#include "core/data/captions.h"
#include "core/data/demo_dataset.h"
#include "core/data/image.h"
#include "core/data/image_folder.h"
#include "tests/test_support.h"

using namespace repa;
using namespace repa::data;
using repa::test::contains;
using repa::test::error_of;

namespace {

ImageFolder folder_with(const test::ScratchDir& dir, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    std::filesystem::create_directories(std::filesystem::path(dir.file(name)).parent_path());
    write_png(dir.file(name), Image(4, 4));
  }
  return scan_image_folder(dir.path().string(), false);
}

}  // namespace

TEST_CASE("captions from file names: the stem with underscores as spaces, prefix and instance prompt before it") {
  test::ScratchDir dir;
  const auto folder = folder_with(dir, {"a_red_disc.png", "sub/blue_square_01.jpg"});
  CaptionOptions options;
  auto captions = read_captions(folder, options);
  REQUIRE(captions.size() == 2);
  CHECK(captions[0] == std::vector<std::string>{"a red disc"});
  CHECK(captions[1] == std::vector<std::string>{"blue square 01"});
  options.prepend_instance_prompt = true;
  options.instance_prompt = "shapes";
  options.prefix = "photo: ";
  CHECK(read_captions(folder, options)[0] == std::vector<std::string>{"photo: shapes a red disc"});
  options.instance_prompt = "";
  CHECK(contains(error_of([&] { read_captions(folder, options); }), "needs an instance_prompt"));
}

TEST_CASE("captions from sidecar text files: one per non-empty line, trimmed, a byte-order mark dropped") {
  test::ScratchDir dir;
  const auto folder = folder_with(dir, {"one.png", "two.png"});
  test::write_bytes(dir.file("one.txt"), "\xEF\xBB\xBF  a red circle on a blue background \r\n");
  test::write_bytes(dir.file("two.txt"), "first caption\n\n  second caption\n");
  CaptionOptions options;
  options.strategy = CaptionOptions::parse_strategy("textfile", "caption_strategy");
  const auto captions = read_captions(folder, options);
  CHECK(captions[0] == std::vector<std::string>{"a red circle on a blue background"});
  CHECK(captions[1] == std::vector<std::string>{"first caption", "second caption"});

  std::filesystem::remove(dir.file("two.txt"));
  const auto missing = error_of([&] { read_captions(folder, options); });
  CHECK(contains(missing, dir.file("two.png")));
  CHECK(contains(missing, dir.file("two.txt")));
}

TEST_CASE("a caption file that is not UTF-8 is named with the offset of the bad byte") {
  test::ScratchDir dir;
  const auto folder = folder_with(dir, {"one.png"});
  test::write_bytes(dir.file("one.txt"), "caf\xC3\xA9 au lait, na\xEFve");  // Latin-1 ï at byte 17
  CaptionOptions options;
  options.strategy = CaptionStrategy::Textfile;
  const auto message = error_of([&] { read_captions(folder, options); });
  CHECK(contains(message, dir.file("one.txt")));
  CHECK(contains(message, "not UTF-8"));
  CHECK(contains(message, "offset 17"));
  CHECK(contains(message, "0xEF"));
  // Overlong and surrogate encodings are not UTF-8 either.
  test::write_bytes(dir.file("one.txt"), "ab\xC0\xAF");
  CHECK(contains(error_of([&] { read_captions(folder, options); }), "offset 2"));
  test::write_bytes(dir.file("one.txt"), "a\xED\xA0\x80");
  CHECK(contains(error_of([&] { read_captions(folder, options); }), "offset 1"));
}

TEST_CASE("instance prompt, metadata.jsonl, and the strategies the trainer refuses") {
  test::ScratchDir dir;
  const auto folder = folder_with(dir, {"a.png", "sub/b.png"});
  CaptionOptions options;
  options.strategy = CaptionOptions::parse_strategy("instanceprompt", "caption_strategy");
  options.instance_prompt = "a photo of sks shapes";
  options.prepend_instance_prompt = true;  // SimpleTuner gives the prompt once, not twice
  CHECK(read_captions(folder, options)[1] == std::vector<std::string>{"a photo of sks shapes"});

  test::write_bytes(dir.file("metadata.jsonl"),
                    "{\"file_name\": \"a.png\", \"text\": \"first\"}\n\n"
                    "{\"file_name\": \"sub/b.png\", \"text\": \" second \"}\n");
  CaptionOptions metadata;
  metadata.strategy = CaptionOptions::parse_strategy("metadata", "caption_strategy");
  const auto captions = read_captions(folder, metadata);
  CHECK(captions[0] == std::vector<std::string>{"first"});
  CHECK(captions[1] == std::vector<std::string>{"second"});
  test::write_bytes(dir.file("metadata.jsonl"), "{\"file_name\": \"a.png\", \"text\": \"first\"}\n");
  CHECK(contains(error_of([&] { read_captions(folder, metadata); }), "sub/b.png"));
  test::write_bytes(dir.file("metadata.jsonl"), "{\"file_name\": \"a.png\", \"caption\": \"first\"}\n");
  CHECK(contains(error_of([&] { read_captions(folder, metadata); }), "line 1"));

  const auto parquet = error_of([] { CaptionOptions::parse_strategy("parquet", "dataset 0 caption_strategy"); });
  CHECK(contains(parquet, "dataset 0 caption_strategy \"parquet\" is not supported"));
  CHECK(contains(parquet, "textfile"));
  CHECK(contains(parquet, "jsonl"));
  CHECK(contains(error_of([] { CaptionOptions::parse_strategy("csv", "caption_strategy"); }), "\"csv\""));
}

TEST_CASE("the demo dataset has a caption beside each image that says colour, shape and place") {
  test::ScratchDir dir;
  generate_demo_dataset(dir.path().string(), {3, 32, 7});
  const auto folder = scan_image_folder(dir.path().string(), true);
  REQUIRE(folder.images.size() == 18);
  CaptionOptions options;
  options.strategy = CaptionStrategy::Textfile;
  const auto captions = read_captions(folder, options);
  const std::map<std::string, std::string> colour = {{"disc", "red disc"},          {"square", "green square"},
                                                     {"triangle", "blue triangle"}, {"ring", "yellow ring"},
                                                     {"cross", "purple cross"},     {"stripes", "cyan striped square"}};
  std::set<std::string> distinct;
  for (std::size_t i = 0; i < folder.images.size(); ++i) {
    const auto& class_name = folder.class_names.at(static_cast<std::size_t>(folder.images[i].label));
    INFO(captions[i][0]);
    CHECK(contains(captions[i][0], colour.at(class_name)));
    CHECK(contains(captions[i][0], ", on a dark background"));
    CHECK(captions[i][0].rfind("a ", 0) == 0);
    distinct.insert(captions[i][0]);
  }
  CHECK(distinct.size() >= 12);  // sizes and places differ between images of a class
}
