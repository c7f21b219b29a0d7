#include "core/data/feature_cache.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "core/base/error.h"
#include "core/data/center_crop.h"
#include "core/data/image.h"
#include "core/data/image_tensor.h"
#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"

namespace repa::data {

namespace fs = std::filesystem;

std::string settings_hash(const nlohmann::json& settings) {
  return content_hash(settings.dump()).substr(0, 16);  // nlohmann's objects dump with sorted keys
}

FeatureCache::FeatureCache(const std::string& root, const std::string& kind, const nlohmann::json& settings)
    : settings_(settings) {
  folder_ = (fs::path(root) / (kind + "-" + settings_hash(settings))).string();
  fs::create_directories(folder_);
  const auto settings_file = fs::path(folder_) / "settings.json";
  if (!fs::exists(settings_file))
    io::write_text_atomically(settings_file.string(), nlohmann::json{{"kind", kind}, {"settings", settings}}.dump(2));
}

std::string FeatureCache::path_of(const std::string& content_hash) const {
  // Two-character fan-out keeps folders small for large datasets.
  return (fs::path(folder_) / content_hash.substr(0, 2) / (content_hash + ".safetensors")).string();
}

bool FeatureCache::contains(const std::string& content_hash) const { return fs::exists(path_of(content_hash)); }

TensorMap FeatureCache::load(const std::string& content_hash) const {
  const auto file = io::SafetensorsFile::open(path_of(content_hash));
  TensorMap out;
  for (const auto& name : file.names()) out[name] = file.tensor(name);
  return out;
}

void FeatureCache::store(const std::string& content_hash, const TensorMap& tensors) const {
  io::NamedTensors named(tensors.begin(), tensors.end());
  io::save_safetensors(path_of(content_hash), named, {{"content_hash", content_hash}});
}

CacheFillReport fill_cache(const FeatureCache& cache, const ImageFolder& folder, int resolution, bool flips,
                           int batch_size, const BatchEncoder& encode,
                           const std::function<void(int64_t, int64_t)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  CacheFillReport report;
  std::vector<const ImageRecord*> missing;
  for (const auto& record : folder.images) {
    if (record.content_hash.empty()) throw Error("image '" + record.path + "' was not prepared (no content hash)");
    if (cache.contains(record.content_hash))
      ++report.reused;
    else
      missing.push_back(&record);
  }
  torch::NoGradGuard no_grad;
  const auto total = static_cast<int64_t>(missing.size());
  for (std::size_t begin = 0; begin < missing.size(); begin += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(missing.size(), begin + static_cast<std::size_t>(batch_size));
    std::vector<torch::Tensor> upright, mirrored;
    for (std::size_t i = begin; i < end; ++i) {
      const Image crop = adm_center_crop(read_image(missing[i]->path), resolution);
      upright.push_back(image_to_tensor(crop));
      if (flips) mirrored.push_back(image_to_tensor(flip_horizontal(crop)));
    }
    const TensorMap results = encode(torch::stack(upright));
    TensorMap flipped_results;
    if (flips) flipped_results = encode(torch::stack(mirrored));
    for (std::size_t i = begin; i < end; ++i) {
      TensorMap entry;
      const auto row = static_cast<int64_t>(i - begin);
      for (const auto& [name, values] : results) entry[name] = values[row].contiguous().cpu();
      for (const auto& [name, values] : flipped_results) entry[name + "_flip"] = values[row].contiguous().cpu();
      cache.store(missing[i]->content_hash, entry);
      ++report.computed;
    }
    if (progress) progress(static_cast<int64_t>(end), total);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace repa::data
