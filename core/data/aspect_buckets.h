// SimpleTuner's aspect-ratio bucketing for one dataset: the size an image is resized to, where it is cropped,
// the size it trains at and the bucket it joins (TrainingSample.prepare with MultiaspectImage's size rules),
// the too-small rule, SDXL's add_time_ids, and an epoch of batches drawn from one bucket each.
// Geometry only: no pixels are touched here. The data loader calls, per dataset:
//   settings = read_bucket_settings(dataset_entry, args, model_family, where);
//   AspectBucketer bucketer(settings);        // one per dataset: it holds the resolution-by-aspect map
//   for each image (W, H) in a fixed order:   check_minimum_size, then bucketer.prepare(W, H, rng)
//   BucketBatchSampler(keys, batch_size, seed).epoch(e) for the batches; resize + crop the pixels per geometry.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace repa::data {

enum class ResolutionType { Pixel, Area };  // pixel_area is converted to area when read, as SimpleTuner does
enum class CropStyle { Center, Corner, Random };
enum class CropAspect { Square, Preserve, Closest, Random };

struct BucketSettings {
  double resolution = 1024;  // pixels of the short edge (pixel) or megapixels (area)
  ResolutionType resolution_type = ResolutionType::Pixel;
  double minimum_image_size = 0;      // 0: no minimum; pixels (pixel) or megapixels (area)
  double maximum_image_size = 0;      // 0: unset; with target_downsample_size enables the resize before a crop
  double target_downsample_size = 0;  // 0: unset
  std::optional<double> max_upscale_threshold;
  bool crop = false;
  CropStyle crop_style = CropStyle::Random;
  CropAspect crop_aspect = CropAspect::Square;
  std::vector<double> crop_aspect_buckets;  // aspects
  std::vector<double> crop_aspect_weights;  // empty: the buckets were plain numbers
  int alignment = 64;                       // aspect_bucket_alignment
  int rounding = 2;                         // aspect_bucket_rounding (decimal places of the bucket's aspect)
};

// The alignment SimpleTuner forces for a model family (64 for sd1x, sd2x, sdxl, ...), nullopt when it sets none.
std::optional<int> required_bucket_alignment(const std::string& model_family);

// Reads one multidatabackend.json dataset entry and the global args (aspect_bucket_rounding,
// aspect_bucket_alignment, and resolution / resolution_type / minimum_image_size / crop* as fallbacks, keys
// with or without a leading "--"). A family's required alignment overrides the args' value with a warning
// appended to `warnings`. InputError naming `where` and the key for every bad value.
BucketSettings read_bucket_settings(const nlohmann::json& dataset, const nlohmann::json& args,
                                    const std::string& model_family, const std::string& where,
                                    std::vector<std::string>* warnings = nullptr);

struct SampleGeometry {
  int original_width = 0, original_height = 0;
  int intermediary_width = 0, intermediary_height = 0;  // SimpleTuner's intermediary_size (metadata value)
  int resize_width = 0, resize_height = 0;              // what the image is resized to before the crop
  int target_width = 0, target_height = 0;              // the crop's size: what trains
  int crop_top = 0, crop_left = 0;                      // in the resized image
  double aspect = 1.0;                                  // the bucket's aspect (rounded)
  std::string bucket;                                   // str(aspect) as Python writes it: "1.0", "1.75"
};

// Uniform integer in [0, n) from a 64-bit Mersenne Twister, identical on every platform (rejection sampling).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

// Python's round(x, digits) (correctly rounded, ties to even on the exact binary value) and str() of the result.
double python_round(double x, int digits);
std::string python_float_str(double rounded, int digits);

// MultiaspectImage's helpers with an explicit alignment / rounding.
int round_to_multiple(double value, int multiple);
double image_aspect(int width, int height, int rounding);

// SimpleTuner skips an image whose original size fails minimum_image_size: empty string when it passes,
// else the reason ("1000x700 is smaller than minimum_image_size 768 px").
std::string too_small_reason(const BucketSettings& settings, int width, int height);

class AspectBucketer {
 public:
  explicit AspectBucketer(BucketSettings settings);

  // The geometry of one image of original size width x height. Calls depend on the earlier ones in area mode
  // (the resolution-by-aspect map fixes a bucket's target to the first image seen), so call in a fixed order.
  // `rng` draws random crops and random aspects. InputError for a non-positive size.
  SampleGeometry prepare(int width, int height, std::mt19937_64& rng);

  const BucketSettings& settings() const { return settings_; }
  int pixel_resolution() const { return pixel_resolution_; }
  double target_area() const { return target_area_; }
  // The resolution-by-aspect map: megapixels -> bucket -> (target width, target height).
  const std::map<double, std::map<std::string, std::pair<int, int>>>& resolution_map() const { return map_; }

  // The plain-number crop_aspect_buckets that crop_aspect random draws from for this image (after
  // max_upscale_threshold); empty means the square fallback. Like prepare, it may fill the area map.
  std::vector<double> random_aspect_choices(int width, int height);

  struct Sizes {
    int target_w, target_h, inter_w, inter_h;
    double aspect;
  };
  // MultiaspectImage.calculate_new_size_by_pixel_edge / _by_pixel_area for this dataset's alignment, rounding.
  Sizes size_for(double aspect, double resolution, int width, int height);

 private:
  double select_aspect(double image_aspect_value, int width, int height, std::mt19937_64& rng);
  void crop_at(SampleGeometry& g, std::mt19937_64& rng) const;

  BucketSettings settings_;
  int pixel_resolution_ = 0;
  double target_area_ = 0;
  std::map<double, std::map<std::string, std::pair<int, int>>> map_;
};

// SDXL's add_time_ids for one sample as SimpleTuner's collate computes them: intermediary (H, W) standing for the
// original size, crop (top, left), target (H, W).
std::array<int64_t, 6> sdxl_time_ids(const SampleGeometry& geometry);

struct BucketBatch {
  std::string bucket;
  std::vector<int64_t> images;  // indices into the keys the sampler was built from
};

// Batches whose images share a bucket, as SimpleTuner's MultiAspectSampler forms them: a bucket with fewer
// images than batch_size is pruned; a bucket's last partial batch is filled with other images of the same
// bucket; buckets take turns, one batch each, in the order first seen. An epoch is a pure function of
// (seed, epoch), so a run resumes by rebuilding the epoch and skipping the batches already trained.
class BucketBatchSampler {
 public:
  BucketBatchSampler(const std::vector<std::string>& image_buckets, int64_t batch_size, uint64_t seed);
  std::vector<BucketBatch> epoch(int64_t epoch) const;
  // Buckets left out, each with its image count.
  const std::vector<std::pair<std::string, int64_t>>& pruned() const { return pruned_; }
  int64_t batches_per_epoch() const;

 private:
  int64_t batch_size_;
  uint64_t seed_;
  std::vector<std::pair<std::string, std::vector<int64_t>>> buckets_;
  std::vector<std::pair<std::string, int64_t>> pruned_;
};

}  // namespace repa::data
