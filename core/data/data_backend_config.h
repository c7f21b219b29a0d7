// SimpleTuner's dataset description (multidatabackend.json, named by data_backend_config) read for a native
// run: the image dataset's folder, captions, resolution, repeats, minimum size and crop. What the studio's
// trainer cannot do is named: keys it can approximate give a warning, keys that would change what trains
// (aspect buckets, non-square crops, remote storage) stop the run with the key and the dataset's id.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data/captions.h"
#include "core/data/image_folder.h"

namespace repa::data {

struct ImageDatasetBackend {
  std::string id;
  std::string instance_data_dir;
  CaptionOptions captions;
  int64_t resolution = 0;          // pixels of the square crop's side; 0: the run's resolution
  int64_t repeats = 0;             // each image is seen 1 + repeats times per epoch, as in SimpleTuner
  int64_t minimum_image_size = 0;  // pixel resolution_type: images whose shorter side is smaller are skipped
  nlohmann::json entry;            // the dataset's entry as written (aspect buckets read their keys from it)
};

struct DataBackendConfig {
  std::string path;
  ImageDatasetBackend image;          // the one enabled image dataset
  std::string text_embeds_cache_dir;  // of the default text_embeds dataset, "" when none
  std::vector<std::string> warnings;  // keys read but not honoured exactly, each naming key and dataset id
};

// Reads `path` (bounded JSON). `run_resolution` is the config's resolution: a dataset asking for another one
// is refused. InputError naming the file, the dataset id and the key for every refusal. With `aspect_buckets`
// (model_family runs) the bucket keys (resolution, resolution_type, minimum_image_size, crop, crop_style,
// crop_aspect, ...) are left to read_bucket_settings: nothing is refused or applied here for them.
DataBackendConfig read_data_backend_config(const std::string& path, int64_t run_resolution,
                                           bool aspect_buckets = false);

// SimpleTuner's repeats and minimum_image_size applied to a prepared folder (sizes read from the files);
// returns how many images minimum_image_size skipped. InputError when none is left.
int64_t apply_dataset_backend(ImageFolder& folder, const ImageDatasetBackend& backend);

}  // namespace repa::data
