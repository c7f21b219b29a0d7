#include "core/data/bucketed_images.h"

#include <torch/torch.h>

#include <chrono>

#include "core/base/error.h"
#include "core/data/center_crop.h"
#include "core/data/image_tensor.h"

namespace repa::data {

std::vector<std::string> BucketedImages::buckets() const {
  std::vector<std::string> out;
  out.reserve(geometry.size());
  for (const auto& g : geometry) out.push_back(g.bucket);
  return out;
}

BucketedImages assign_buckets(ImageFolder& folder, const BucketSettings& settings, uint64_t seed) {
  BucketedImages out;
  out.settings = settings;
  out.seed = seed;
  AspectBucketer bucketer(settings);
  std::mt19937_64 rng(seed);
  std::vector<ImageRecord> kept;
  for (auto& record : folder.images) {
    const auto [width, height] = read_image_size(record.path);
    const std::string reason = too_small_reason(settings, width, height);
    if (!reason.empty()) {
      out.too_small.push_back({record.path, reason});
      continue;
    }
    const SampleGeometry g = bucketer.prepare(width, height, rng);
    out.cache_keys.push_back(record.content_hash + "-" + std::to_string(g.resize_width) + "x" +
                             std::to_string(g.resize_height) + "-" + std::to_string(g.crop_left) + "," +
                             std::to_string(g.crop_top) + "-" + std::to_string(g.target_width) + "x" +
                             std::to_string(g.target_height));
    out.geometry.push_back(g);
    kept.push_back(std::move(record));
  }
  folder.images = std::move(kept);
  if (folder.images.empty())
    throw InputError("aspect buckets: every image of '" + folder.root + "' is too small (" +
                     (out.too_small.empty() ? std::string("no images") : out.too_small.front().reason) + ")");
  return out;
}

Image bucket_crop(const Image& image, const SampleGeometry& g) {
  Image resized = (image.width == g.resize_width && image.height == g.resize_height)
                      ? image
                      : resize_image(image, g.resize_width, g.resize_height, ResampleFilter::Lanczos);
  if (g.crop_left == 0 && g.crop_top == 0 && g.target_width == resized.width && g.target_height == resized.height)
    return resized;
  if (g.crop_left < 0 || g.crop_top < 0 || g.crop_left + g.target_width > resized.width ||
      g.crop_top + g.target_height > resized.height)
    throw InputError("aspect buckets: crop " + std::to_string(g.target_width) + "x" + std::to_string(g.target_height) +
                     " at (" + std::to_string(g.crop_left) + ", " + std::to_string(g.crop_top) + ") leaves the " +
                     std::to_string(resized.width) + "x" + std::to_string(resized.height) + " image");
  Image out;
  out.width = g.target_width;
  out.height = g.target_height;
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    const auto* src = &resized.pixels[(static_cast<std::size_t>(y + g.crop_top) * resized.width + g.crop_left) * 3];
    std::copy(src, src + static_cast<std::size_t>(out.width) * 3,
              &out.pixels[static_cast<std::size_t>(y) * out.width * 3]);
  }
  return out;
}

nlohmann::json bucket_cache_settings(const BucketedImages& images) {
  const auto& s = images.settings;
  nlohmann::json aspects = s.crop_aspect_buckets, weights = s.crop_aspect_weights;
  return {{"crop", "aspect_buckets"},
          {"resample", "lanczos"},
          {"resolution", s.resolution},
          {"resolution_type", s.resolution_type == ResolutionType::Area ? "area" : "pixel"},
          {"minimum_image_size", s.minimum_image_size},
          {"maximum_image_size", s.maximum_image_size},
          {"target_downsample_size", s.target_downsample_size},
          {"bucket_crop", s.crop},
          {"crop_style", static_cast<int>(s.crop_style)},
          {"crop_aspect", static_cast<int>(s.crop_aspect)},
          {"crop_aspect_buckets", aspects},
          {"crop_aspect_weights", weights},
          {"alignment", s.alignment},
          {"rounding", s.rounding},
          {"seed", images.seed}};
}

CacheFillReport fill_bucketed_cache(const FeatureCache& cache, const ImageFolder& folder, const BucketedImages& images,
                                    bool flips, const BatchEncoder& encode,
                                    const std::function<void(int64_t, int64_t)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  CacheFillReport report;
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < folder.images.size(); ++i) {
    if (cache.contains(images.cache_keys.at(i)))
      ++report.reused;
    else
      missing.push_back(i);
  }
  torch::NoGradGuard no_grad;
  const auto total = static_cast<int64_t>(missing.size());
  for (std::size_t k = 0; k < missing.size(); ++k) {
    const std::size_t i = missing[k];
    const Image crop = bucket_crop(read_image(folder.images[i].path), images.geometry[i]);
    TensorMap entry;
    for (const auto& [name, values] : encode(image_to_tensor(crop).unsqueeze(0)))
      entry[name] = values[0].contiguous().cpu();
    if (flips)
      for (const auto& [name, values] : encode(image_to_tensor(flip_horizontal(crop)).unsqueeze(0)))
        entry[name + "_flip"] = values[0].contiguous().cpu();
    cache.store(images.cache_keys[i], entry);
    ++report.computed;
    if (progress) progress(static_cast<int64_t>(k + 1), total);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace repa::data
