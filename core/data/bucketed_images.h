// A dataset prepared for aspect-bucketed training, as SimpleTuner prepares one: per image (in the folder's order,
// with one seeded generator) the geometry from the AspectBucketer, too-small images set aside by name, and the
// pixels resized with Lanczos (PIL's LANCZOS, which SimpleTuner resizes with) and cropped per geometry. Caches
// are keyed per image by its content and its geometry, so a changed resolution or crop setting recomputes.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data/aspect_buckets.h"
#include "core/data/feature_cache.h"
#include "core/data/image.h"
#include "core/data/image_folder.h"

namespace repa::data {

struct BucketedImages {
  BucketSettings settings;
  uint64_t seed = 0;
  std::vector<SampleGeometry> geometry;      // one per folder.images entry (after the too-small ones left)
  std::vector<std::string> cache_keys;       // content hash + geometry, one per image
  std::vector<CorruptImage> too_small;       // path and SimpleTuner's reason
  std::vector<std::string> buckets() const;  // each image's bucket key, for BucketBatchSampler
};

// Removes the images of `folder` that fail minimum_image_size (named in the result) and computes the geometry
// of the others in order with std::mt19937_64(seed). Reads only the image headers. InputError when no image
// is left.
BucketedImages assign_buckets(ImageFolder& folder, const BucketSettings& settings, uint64_t seed);

// The pixels an image trains with: resized to the geometry's resize size (Lanczos) and cut at its crop.
Image bucket_crop(const Image& image, const SampleGeometry& geometry);

// What keys a bucketed cache besides the encoder's own settings: the bucket settings and the resampling.
nlohmann::json bucket_cache_settings(const BucketedImages& images);

// fill_cache for bucketed images: one image per encode call (sizes differ between buckets), entries stored
// under cache_keys[i]; with `flips` also the mirrored crop under "<name>_flip".
CacheFillReport fill_bucketed_cache(const FeatureCache& cache, const ImageFolder& folder, const BucketedImages& images,
                                    bool flips, const BatchEncoder& encode,
                                    const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace repa::data
