// Per-image caches of what a frozen network computes from a training image: the VAE posterior (mean, std)
// and the teacher's tokens (fp16). A cache folder is named by a hash of every setting that changes the
// result (network weights, resolution, crop, preprocessing), so changing one starts a new folder and never
// mixes entries; inside, one safetensors file per image named by the image's content hash. With random flips
// each entry also holds the mirrored image's result ("<name>_flip").
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/data/image_folder.h"

namespace repa::data {

using TensorMap = std::map<std::string, torch::Tensor>;

class FeatureCache {
 public:
  // `root` is the cache folder (studio.cache_dir, or <dataset>/.repa-cache); `kind` is "latents" or
  // "teacher_tokens"; `settings` every input that changes the cached values.
  FeatureCache(const std::string& root, const std::string& kind, const nlohmann::json& settings);

  const std::string& folder() const { return folder_; }
  const nlohmann::json& settings() const { return settings_; }
  bool contains(const std::string& content_hash) const;
  TensorMap load(const std::string& content_hash) const;  // throws InputError naming the file when damaged
  void store(const std::string& content_hash, const TensorMap& tensors) const;

 private:
  std::string path_of(const std::string& content_hash) const;
  std::string folder_;
  nlohmann::json settings_;
};

// Turns a batch of images (B,3,H,W) in [-1,1] into named per-image results, each (B,...).
using BatchEncoder = std::function<TensorMap(const torch::Tensor& pixels)>;

struct CacheFillReport {
  int64_t reused = 0;    // entries already present
  int64_t computed = 0;  // entries written now
  double seconds = 0.0;
};

// Computes and stores the entries `cache` lacks for the images of `folder`, `batch_size` images per call of
// `encode`, cropped to `resolution`; with `flips` also the mirrored image under "<name>_flip".
// `progress(done, total)` is called after each batch.
CacheFillReport fill_cache(const FeatureCache& cache, const ImageFolder& folder, int resolution, bool flips,
                           int batch_size, const BatchEncoder& encode,
                           const std::function<void(int64_t, int64_t)>& progress = {});

// A hash (16 hex digits) of a JSON value's canonical text: names cache folders and config versions.
std::string settings_hash(const nlohmann::json& settings);

}  // namespace repa::data
