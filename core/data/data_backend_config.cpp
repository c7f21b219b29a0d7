#include "core/data/data_backend_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/data/image.h"

namespace repa::data {

namespace fs = std::filesystem;

namespace {

// Keys that only name or route a dataset, or tune SimpleTuner's own bookkeeping: no effect on what trains.
const std::set<std::string> kBookkeepingKeys = {"id",
                                                "type",
                                                "dataset_type",
                                                "disabled",
                                                "disable",
                                                "probability",
                                                "default",
                                                "skip_file_discovery",
                                                "preserve_data_backend_cache",
                                                "metadata_update_interval",
                                                "hash_filenames",
                                                "cache_file_suffix"};

// Keys the studio reads, or writes itself in its export with values it honours.
const std::set<std::string> kImageKeys = {
    "instance_data_dir", "caption_strategy", "instance_prompt", "prepend_instance_prompt", "only_instance_prompt",
    "resolution",        "resolution_type",  "repeats",         "minimum_image_size",      "crop",
    "crop_style",        "crop_aspect",      "cache_dir_vae"};

// Keys only aspect-bucketed runs read (through read_bucket_settings).
const std::set<std::string> kBucketKeys = {"maximum_image_size", "target_downsample_size", "crop_aspect_buckets",
                                           "max_upscale_threshold"};

std::string text_of(const nlohmann::json& entry, const std::string& key, const std::string& where,
                    const std::string& fallback) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  if (!entry[key].is_string())
    throw InputError(where + ": \"" + key + "\" must be a string, got " + json_excerpt(entry[key]));
  return entry[key].get<std::string>();
}

bool flag_of(const nlohmann::json& entry, const std::string& key, const std::string& where, bool fallback) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  if (entry[key].is_boolean()) return entry[key].get<bool>();
  if (entry[key].is_string() && (entry[key] == "true" || entry[key] == "false")) return entry[key] == "true";
  throw InputError(where + ": \"" + key + "\" must be true or false, got " + json_excerpt(entry[key]));
}

double number_of(const nlohmann::json& entry, const std::string& key, const std::string& where, double fallback) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  if (!entry[key].is_number())
    throw InputError(where + ": \"" + key + "\" must be a number, got " + json_excerpt(entry[key]));
  return entry[key].get<double>();
}

ImageDatasetBackend read_image_backend(const nlohmann::json& entry, const std::string& where, int64_t run_resolution,
                                       bool aspect_buckets, std::vector<std::string>& warnings) {
  ImageDatasetBackend out;
  out.entry = entry;
  out.id = text_of(entry, "id", where, "");
  const std::string type = text_of(entry, "type", where, "local");
  if (type != "local")
    throw InputError(where + ": type \"" + type +
                     "\" is not supported by the studio's trainer, which reads local "
                     "folders (type \"local\")");
  out.instance_data_dir = text_of(entry, "instance_data_dir", where, "");
  if (out.instance_data_dir.empty()) throw InputError(where + ": \"instance_data_dir\" is missing or empty");

  const std::string key = where + " caption_strategy";
  out.captions.source = where;
  out.captions.strategy = CaptionOptions::parse_strategy(text_of(entry, "caption_strategy", where, "filename"), key);
  out.captions.instance_prompt = text_of(entry, "instance_prompt", where, "");
  out.captions.prepend_instance_prompt = flag_of(entry, "prepend_instance_prompt", where, false);
  if (flag_of(entry, "only_instance_prompt", where, false)) out.captions.strategy = CaptionStrategy::InstancePrompt;

  out.repeats = static_cast<int64_t>(number_of(entry, "repeats", where, 0));
  if (out.repeats < 0) throw InputError(where + ": repeats must be 0 or more, got " + std::to_string(out.repeats));
  if (aspect_buckets) {
    for (const auto& [name, value] : entry.items())
      if (!kImageKeys.count(name) && !kBookkeepingKeys.count(name) && !kBucketKeys.count(name))
        warnings.push_back(where + ": \"" + name + "\" = " + json_excerpt(value) +
                           " is not used by the studio's trainer");
    return out;
  }
  const std::string resolution_type = text_of(entry, "resolution_type", where, "pixel");
  if (resolution_type != "pixel")
    throw InputError(where + ": resolution_type \"" + resolution_type +
                     "\" sizes images by area into aspect buckets, which the studio's trainer does not have; use "
                     "\"pixel\" (square crops of side resolution)");
  const double resolution = number_of(entry, "resolution", where, static_cast<double>(run_resolution));
  out.resolution = static_cast<int64_t>(resolution);
  if (out.resolution != run_resolution || resolution != static_cast<double>(out.resolution))
    throw InputError(where + ": resolution " + json_excerpt(entry["resolution"]) +
                     " differs from the run's resolution " + std::to_string(run_resolution) +
                     "; set both to the same value");
  out.minimum_image_size = static_cast<int64_t>(number_of(entry, "minimum_image_size", where, 0));
  if (out.minimum_image_size < 0)
    throw InputError(where + ": minimum_image_size must be 0 or more, got " + std::to_string(out.minimum_image_size));

  const std::string aspect = text_of(entry, "crop_aspect", where, "square");
  if (aspect != "square")
    throw InputError(where + ": crop_aspect \"" + aspect +
                     "\" keeps other aspect ratios, which the studio's trainer (square batches) does not; use "
                     "\"square\"");
  if (!flag_of(entry, "crop", where, true))
    warnings.push_back(where + ": crop false: the studio's trainer centre-crops every image to a square anyway");
  const std::string style = text_of(entry, "crop_style", where, "center");
  if (style != "center" && style != "centre")
    warnings.push_back(where + ": crop_style \"" + style + "\": the studio's trainer crops at the centre (ADM crop)");
  if (entry.contains("cache_dir_vae"))
    warnings.push_back(where +
                       ": cache_dir_vae is SimpleTuner's cache; the studio keeps its latents in studio.cache_dir "
                       "(or beside the dataset)");
  for (const auto& [name, value] : entry.items())
    if (!kImageKeys.count(name) && !kBookkeepingKeys.count(name))
      warnings.push_back(where + ": \"" + name + "\" = " + json_excerpt(value) +
                         " is not used by the studio's trainer");
  return out;
}

}  // namespace

DataBackendConfig read_data_backend_config(const std::string& path, int64_t run_resolution, bool aspect_buckets) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("data_backend_config '" + path + "' cannot be read");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto root = parse_json_bounded(text, "data_backend_config '" + path + "'");
  if (!root.is_array())
    throw InputError("data_backend_config '" + path + "': expected a JSON list of datasets, got " + json_excerpt(root));
  DataBackendConfig out;
  out.path = path;
  int images = 0;
  for (std::size_t i = 0; i < root.size(); ++i) {
    const auto& entry = root[i];
    std::string where = "data_backend_config '" + path + "' dataset " + std::to_string(i);
    if (!entry.is_object()) throw InputError(where + ": expected an object, got " + json_excerpt(entry));
    if (entry.contains("id") && entry["id"].is_string()) where += " (\"" + entry["id"].get<std::string>() + "\")";
    if (flag_of(entry, "disabled", where, false) || flag_of(entry, "disable", where, false)) continue;
    const std::string kind = text_of(entry, "dataset_type", where, "image");
    if (kind == "image") {
      if (++images > 1)
        throw InputError(where +
                         ": a second enabled image dataset; the studio's trainer reads one (set "
                         "\"disabled\": true on the others)");
      out.image = read_image_backend(entry, where, run_resolution, aspect_buckets, out.warnings);
    } else if (kind == "text_embeds") {
      if (out.text_embeds_cache_dir.empty() || flag_of(entry, "default", where, false))
        out.text_embeds_cache_dir = text_of(entry, "cache_dir", where, "");
    } else if (kind == "image_embeds") {
      out.warnings.push_back(where + ": an image_embeds dataset; the studio caches latents in studio.cache_dir");
    } else {
      throw InputError(where + ": dataset_type \"" + kind +
                       "\" is not supported by the studio's trainer (image, text_embeds, image_embeds)");
    }
  }
  if (images == 0) throw InputError("data_backend_config '" + path + "' has no enabled image dataset");
  return out;
}

int64_t apply_dataset_backend(ImageFolder& folder, const ImageDatasetBackend& backend) {
  int64_t skipped = 0;
  if (backend.minimum_image_size > 0) {
    std::vector<ImageRecord> kept;
    for (auto& image : folder.images) {
      const Image decoded = read_image(image.path);
      if (std::min(decoded.width, decoded.height) < backend.minimum_image_size) {
        ++skipped;
        continue;
      }
      kept.push_back(std::move(image));
    }
    folder.images = std::move(kept);
    if (folder.images.empty())
      throw InputError("dataset \"" + backend.id + "\": every image of '" + folder.root +
                       "' is smaller than minimum_image_size " + std::to_string(backend.minimum_image_size));
  }
  if (backend.repeats > 0) {
    std::vector<ImageRecord> repeated;
    for (const auto& image : folder.images)
      for (int64_t k = 0; k <= backend.repeats; ++k) repeated.push_back(image);
    folder.images = std::move(repeated);
  }
  return skipped;
}

}  // namespace repa::data
