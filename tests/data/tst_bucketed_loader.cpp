// Aspect-bucketed data: the geometry per image with too-small files named, the bucket crop (Lanczos resize, cut
// at the geometry's corner), cache keys that follow the bucket settings, and the loader drawing each global batch
// from one bucket in BucketBatchSampler's order: resumable from a stored position, and split between ranks as the
// one-process batch.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "core/base/error.h"
#include "core/data/batch_loader.h"
#include "core/data/bucketed_images.h"
#include "core/data/center_crop.h"
#include "core/data/data_backend_config.h"
#include "core/data/feature_cache.h"
#include "core/data/image_folder.h"
#include "tests/test_support.h"

using namespace repa::data;
using repa::test::contains;
using repa::test::error_of;

namespace {

Image pattern(int width, int height, int seed) {
  Image image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        image.pixels[(static_cast<std::size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>((x * 7 + y * 13 + c * 50 + seed * 31) % 256);
  return image;
}

// 5 landscape (48x32), 5 portrait (32x48), 4 square (40x40) images and one 16x20 under minimum_image_size.
struct Dataset {
  repa::test::ScratchDir dir;
  ImageFolder folder;
  BucketedImages images;
  explicit Dataset(const std::string& crop_style = "center") {
    int n = 0;
    auto add = [&](int w, int h, int count) {
      for (int k = 0; k < count; ++k, ++n)
        write_png(dir.file("pics/img" + std::to_string(10 + n) + ".png"), pattern(w, h, n));
    };
    add(48, 32, 5);
    add(32, 48, 5);
    add(40, 40, 4);
    add(16, 20, 1);
    folder = scan_image_folder(dir.file("pics"), false);
    prepare_image_folder(folder, 1);
    images = assign_buckets(folder, settings(crop_style), 3);
  }
  static BucketSettings settings(const std::string& crop_style) {
    const nlohmann::json entry = {{"resolution", 32},         {"resolution_type", "pixel"}, {"crop", true},
                                  {"crop_style", crop_style}, {"crop_aspect", "preserve"},  {"minimum_image_size", 24}};
    return read_bucket_settings(entry, {{"aspect_bucket_alignment", 8}}, "", "test dataset");
  }
};

BatchLoaderOptions bucketed(const Dataset& d, int batch, int rank, int world, int threads) {
  BatchLoaderOptions o;
  o.batch_size = batch;
  o.seed = 11;
  o.random_flip = true;
  o.threads = threads;
  o.rank = rank;
  o.world_size = world;
  o.buckets = d.images.buckets();
  o.cache_keys = d.images.cache_keys;
  o.crop = [&d](int64_t i, const Image& image) { return bucket_crop(image, d.images.geometry.at(std::size_t(i))); };
  return o;
}

}  // namespace

TEST_CASE("geometry per image: too-small files named, buckets by aspect, crops of the target size") {
  Dataset d;
  REQUIRE(d.images.too_small.size() == 1);
  CHECK(contains(d.images.too_small[0].path, "img24.png"));
  CHECK(contains(d.images.too_small[0].reason, "minimum_image_size"));
  REQUIRE(d.folder.images.size() == 14);
  REQUIRE(d.images.geometry.size() == 14);
  std::map<std::string, int> counts;
  for (const auto& g : d.images.geometry) ++counts[g.bucket];
  CHECK(counts == std::map<std::string, int>{{"0.67", 5}, {"1.0", 4}, {"1.5", 5}});
  for (std::size_t i = 0; i < 14; ++i) {
    const auto& g = d.images.geometry[i];
    const Image crop = bucket_crop(read_image(d.folder.images[i].path), g);
    CHECK(crop.width == g.target_width);
    CHECK(crop.height == g.target_height);
    if (g.bucket == "1.5") CHECK((g.target_width == 48 && g.target_height == 32));
    if (g.bucket == "1.0") CHECK((g.target_width == 32 && g.target_height == 32 && g.resize_width == 32));
  }
  // A 48x32 image already at its target is passed through unchanged.
  const Image original = read_image(d.folder.images[0].path);
  CHECK(bucket_crop(original, d.images.geometry[0]).pixels == original.pixels);
}

TEST_CASE("Lanczos keeps a flat image flat and rings where bicubic does not reach") {
  Image flat = pattern(1, 1, 0);
  flat = resize_image(flat, 9, 7, ResampleFilter::Bicubic);
  const Image up = resize_image(flat, 20, 13, ResampleFilter::Lanczos);
  for (std::size_t i = 0; i < up.pixels.size(); i += 3) CHECK(up.pixels[i] == flat.pixels[0]);
  // A step edge: the two filters' support differs (3 vs 2 taps), so the downsampled values differ.
  Image step;
  step.width = 24;
  step.height = 1;
  for (int x = 0; x < 24; ++x)
    for (int c = 0; c < 3; ++c) step.pixels.push_back(x < 12 ? 40 : 200);
  const Image a = resize_image(step, 7, 1, ResampleFilter::Lanczos);
  const Image b = resize_image(step, 7, 1, ResampleFilter::Bicubic);
  CHECK(a.pixels != b.pixels);
  CHECK(a.pixels.front() == 40);  // far from the edge both stay flat
  CHECK(a.pixels.back() == 200);
}

TEST_CASE("cache keys and cache settings follow the crop settings") {
  Dataset center("center"), corner("corner");
  CHECK(center.images.cache_keys == corner.images.cache_keys);  // every image resizes to its target: no crop
  CHECK(settings_hash(bucket_cache_settings(center.images)) != settings_hash(bucket_cache_settings(corner.images)));
  // A 67x32 image (target 64x32 after alignment) is cut: at the centre and at the corner, under different keys.
  repa::test::ScratchDir dir;
  write_png(dir.file("wide/a.png"), pattern(67, 32, 1));
  auto keys = [&](const std::string& style) {
    auto folder = scan_image_folder(dir.file("wide"), false);
    prepare_image_folder(folder, 1);
    const auto images = assign_buckets(folder, Dataset::settings(style), 3);
    const auto& g = images.geometry.at(0);
    CHECK(bucket_crop(read_image(folder.images[0].path), g).width == g.target_width);
    return std::make_pair(images.cache_keys.at(0), g.crop_left);
  };
  const auto [center_key, center_left] = keys("center");
  const auto [corner_key, corner_left] = keys("corner");
  CHECK(center_left != corner_left);
  CHECK(center_key != corner_key);
}

TEST_CASE("every batch comes from one bucket, in BucketBatchSampler's order, with pixels of its target size") {
  Dataset d;
  BatchLoader loader(d.folder, bucketed(d, 2, 0, 1, 0));
  const BucketBatchSampler sampler(d.images.buckets(), 2, 11);
  std::vector<BucketBatch> expected;
  for (int e = 0; e < 3; ++e)
    for (auto& b : sampler.epoch(e)) expected.push_back(b);
  REQUIRE(expected.size() == 24);  // 3 + 3 + 2 batches an epoch
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const Batch batch = loader.next();
    CHECK(batch.indices == expected[k].images);
    const auto& g = d.images.geometry.at(std::size_t(batch.indices[0]));
    for (auto i : batch.indices) CHECK(d.images.geometry.at(std::size_t(i)).bucket == expected[k].bucket);
    CHECK(batch.pixels.sizes() == torch::IntArrayRef({2, 3, g.target_height, g.target_width}));
  }
  CHECK(loader.state().value("epoch", -1) == 3);
}

TEST_CASE("a bucketed loader resumes at the exact next batch, across epochs and worker threads") {
  Dataset d;
  BatchLoader first(d.folder, bucketed(d, 2, 0, 1, 2));
  for (int k = 0; k < 7; ++k) first.next();
  const auto position = first.state();
  CHECK(position.value("offset", -1) == 7);
  BatchLoader resumed(d.folder, bucketed(d, 2, 0, 1, 0));
  resumed.load_state(position);
  for (int k = 0; k < 12; ++k) {  // through the end of epoch 0 and into epochs 1 and 2
    const Batch a = first.next(), b = resumed.next();
    CHECK(a.indices == b.indices);
    CHECK(a.flipped == b.flipped);
    CHECK(torch::equal(a.pixels, b.pixels));
    CHECK(first.state() == resumed.state());
  }
  // A square-crop run's position is named, not misread.
  BatchLoaderOptions square;
  square.batch_size = 2;
  square.threads = 0;
  BatchLoader plain(d.folder, square);
  plain.next();
  CHECK(contains(error_of([&] { resumed.load_state(plain.state()); }), "not an aspect-bucket position"));
  CHECK(contains(error_of([&] { plain.load_state(position); }), "is an aspect-bucket position"));
}

TEST_CASE("2 ranks of batch 1 are the rows of 1 rank's batch of 2 from one bucket") {
  Dataset d;
  BatchLoader whole(d.folder, bucketed(d, 2, 0, 1, 0));
  BatchLoader rank0(d.folder, bucketed(d, 1, 0, 2, 0));
  BatchLoader rank1(d.folder, bucketed(d, 1, 1, 2, 2));
  for (int k = 0; k < 12; ++k) {
    const Batch w = whole.next(), a = rank0.next(), b = rank1.next();
    REQUIRE(a.indices.size() == 1);
    CHECK(std::vector<int64_t>{a.indices[0], b.indices[0]} == w.indices);
    CHECK(std::vector<bool>{a.flipped[0], b.flipped[0]} == w.flipped);
    CHECK(torch::equal(torch::cat({a.pixels, b.pixels}), w.pixels));
    CHECK(a.pixels.sizes() == b.pixels.sizes());  // the two shards train at one bucket's size
    CHECK(rank0.state() == whole.state());
    CHECK(rank1.state() == whole.state());
  }
}

TEST_CASE("a model_family run's multidatabackend.json keeps area resolutions and non-square crops for buckets") {
  repa::test::ScratchDir dir;
  const nlohmann::json datasets = nlohmann::json::array({{{"id", "pics"},
                                                          {"type", "local"},
                                                          {"instance_data_dir", dir.file("pics")},
                                                          {"resolution", 0.25},
                                                          {"resolution_type", "area"},
                                                          {"crop", true},
                                                          {"crop_aspect", "preserve"},
                                                          {"crop_style", "random"},
                                                          {"minimum_image_size", 0.1}}});
  const std::string path = dir.file("multidatabackend.json");
  std::ofstream(path) << datasets.dump();
  CHECK(contains(error_of([&] { read_data_backend_config(path, 512); }), "resolution_type \"area\""));
  const auto config = read_data_backend_config(path, 512, true);
  CHECK(config.image.entry.at("crop_aspect") == "preserve");
  CHECK(config.image.minimum_image_size == 0);  // the bucketer applies it (in megapixels here)
  const auto s = read_bucket_settings(config.image.entry, {{"resolution", 512}}, "sdxl", "pics");
  CHECK(s.resolution_type == ResolutionType::Area);
  CHECK(s.resolution == 0.25);
  CHECK(s.crop_aspect == CropAspect::Preserve);
  CHECK(s.minimum_image_size == 0.1);
}
