// Batches: the same sequence with or without background threads, after a resume, and with caches and flips.
#include <doctest/doctest.h>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "core/data/batch_loader.h"
#include "core/data/demo_dataset.h"
#include "core/data/feature_cache.h"
#include "core/data/image_folder.h"
#include "core/data/image_tensor.h"
#include "tests/test_support.h"

using namespace repa::data;
namespace fs = std::filesystem;

namespace {
ImageFolder demo_folder(const repa::test::ScratchDir& dir) {
  generate_demo_dataset(dir.file("demo"), {3, 16, 5});
  auto folder = scan_image_folder(dir.file("demo"), true);
  prepare_image_folder(folder, 2);
  return folder;
}

std::vector<Batch> draw(BatchLoader& loader, int n) {
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) out.push_back(loader.next());
  return out;
}
}  // namespace

TEST_CASE("the demo dataset is deterministic, class-labelled, and reused when present") {
  repa::test::ScratchDir dir;
  CHECK(generate_demo_dataset(dir.file("a"), {2, 16, 9}) == 2 * static_cast<int>(demo_class_names().size()));
  generate_demo_dataset(dir.file("b"), {2, 16, 9});
  const auto first = repa::test::read_bytes(dir.file("a/ring/ring_001.png"));
  CHECK(first == repa::test::read_bytes(dir.file("b/ring/ring_001.png")));
  const auto time = fs::last_write_time(dir.file("a/ring/ring_001.png"));
  generate_demo_dataset(dir.file("a"), {2, 16, 9});
  CHECK(fs::last_write_time(dir.file("a/ring/ring_001.png")) == time);
  generate_demo_dataset(dir.file("c"), {2, 16, 10});
  CHECK(first != repa::test::read_bytes(dir.file("c/ring/ring_001.png")));
  auto folder = scan_image_folder(dir.file("a"), true);
  auto names = demo_class_names();
  std::sort(names.begin(), names.end());
  CHECK(folder.class_names == names);  // labels follow the sorted folder names
}

TEST_CASE("threaded batches equal the synchronous ones, and a resumed loader continues the same sequence") {
  repa::test::ScratchDir dir;
  const auto folder = demo_folder(dir);
  BatchLoaderOptions options;
  options.batch_size = 4;
  options.resolution = 8;
  options.random_flip = true;
  options.seed = 11;
  options.threads = 0;
  BatchLoader sync(folder, options);
  const auto reference = draw(sync, 8);
  options.threads = 2;
  BatchLoader threaded(folder, options);
  const auto got = draw(threaded, 5);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].indices == reference[i].indices);
    CHECK(torch::equal(got[i].pixels, reference[i].pixels));
    CHECK(torch::equal(got[i].labels, reference[i].labels));
  }
  const auto saved = threaded.state();
  BatchLoader resumed(folder, options);
  resumed.load_state(saved);
  const auto rest = draw(resumed, 3);
  for (std::size_t i = 0; i < rest.size(); ++i) CHECK(rest[i].indices == reference[5 + i].indices);
  bool any_flip = false, any_upright = false;
  for (const auto& b : reference)
    for (bool f : b.flipped) (f ? any_flip : any_upright) = true;
  CHECK(any_flip);
  CHECK(any_upright);
  CHECK(reference[0].pixels.sizes() == torch::IntArrayRef({4, 3, 8, 8}));
  CHECK(reference[0].pixels.min().item<float>() >= -1.0f);
}

TEST_CASE("a cache is filled once, reused, keyed by its settings, and delivers the flipped entry for flipped samples") {
  repa::test::ScratchDir dir;
  const auto folder = demo_folder(dir);
  int calls = 0;
  // A stand-in network whose output reveals the orientation: the mean of the left half minus the right half.
  BatchEncoder encode = [&](const torch::Tensor& pixels) {
    ++calls;
    const auto w = pixels.size(3);
    auto left = pixels.narrow(3, 0, w / 2).mean({1, 2, 3});
    auto right = pixels.narrow(3, w / 2, w / 2).mean({1, 2, 3});
    return TensorMap{{"tokens", (left - right).unsqueeze(1).unsqueeze(2).to(torch::kFloat16)}};
  };
  FeatureCache cache(dir.file("cache"), "teacher_tokens", {{"encoder", "test"}, {"resolution", 8}});
  auto report = fill_cache(cache, folder, 8, true, 5, encode);
  CHECK(report.computed == static_cast<int64_t>(folder.images.size()));
  CHECK(calls == 2 * 4);  // 18 images in batches of 5, both orientations
  report = fill_cache(cache, folder, 8, true, 5, encode);
  CHECK(report.computed == 0);
  CHECK(report.reused == static_cast<int64_t>(folder.images.size()));
  FeatureCache other(dir.file("cache"), "teacher_tokens", {{"encoder", "test"}, {"resolution", 16}});
  CHECK(other.folder() != cache.folder());
  CHECK_FALSE(other.contains(folder.images[0].content_hash));

  BatchLoaderOptions options;
  options.batch_size = 6;
  options.resolution = 8;
  options.random_flip = true;
  options.seed = 3;
  options.threads = 1;
  options.caches = {&cache};
  BatchLoader loader(folder, options);
  const auto batch = loader.next();
  REQUIRE(batch.cached.count("tokens"));
  CHECK(batch.cached.at("tokens").sizes() == torch::IntArrayRef({6, 1, 1}));
  const auto expected = encode(batch.pixels).at("tokens");  // from the pixels as the batch saw them
  CHECK(torch::allclose(batch.cached.at("tokens").to(torch::kFloat32), expected.to(torch::kFloat32), 1e-3, 1e-3));
}
