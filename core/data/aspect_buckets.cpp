#include "core/data/aspect_buckets.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::data {

using nlohmann::json;

namespace {

// Python's int() of a float: truncation toward zero.
int trunc_int(double v) {
  return static_cast<int>(std::trunc(v));
}

[[noreturn]] void bad(const std::string& where, const std::string& key, const json& value, const std::string& why) {
  throw InputError(where + ": " + key + " = " + json_excerpt(value) + ": " + why);
}

// The dataset's value, else the args' value (bare or "--" key), else null.
const json* lookup(const json& dataset, const json& args, const std::string& key) {
  if (dataset.is_object() && dataset.contains(key) && !dataset.at(key).is_null()) return &dataset.at(key);
  if (args.is_object()) {
    if (args.contains(key) && !args.at(key).is_null()) return &args.at(key);
    if (args.contains("--" + key) && !args.at("--" + key).is_null()) return &args.at("--" + key);
  }
  return nullptr;
}

double number(const json& v, const std::string& where, const std::string& key) {
  if (v.is_number()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) bad(where, key, v, "not a finite number");
    return d;
  }
  if (v.is_string()) {  // SimpleTuner's config files often quote numbers
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return d;
  }
  bad(where, key, v, "expected a number");
}

bool boolean(const json& v, const std::string& where, const std::string& key) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
  }
  bad(where, key, v, "expected true or false");
}

std::string text(const json& v, const std::string& where, const std::string& key) {
  if (!v.is_string()) bad(where, key, v, "expected a string");
  return v.get<std::string>();
}

}  // namespace

std::optional<int> required_bucket_alignment(const std::string& family) {
  // Each family's model class overrides --aspect_bucket_alignment with these values ("pixart" is the studio's
  // name for pixart_sigma; Chroma's config rules force 64 as Flux's do).
  static const std::map<std::string, int> table = {
      {"sd1x", 64},    {"sd2x", 64},         {"sdxl", 64},      {"kolors", 64},   {"sd3", 64},
      {"flux", 64},    {"pixart_sigma", 64}, {"pixart", 64},    {"chroma", 64},   {"sana", 64},
      {"auraflow", 64}, {"hidream", 64},     {"lumina2", 64},   {"ltxvideo", 64}, {"ltxvideo2", 64},
      {"flux2", 16},   {"cosmos2image", 16}, {"cosmos3", 16},   {"qwen_image", 32}, {"deepfloyd", 32}};
  const auto it = table.find(family);
  if (it == table.end()) return std::nullopt;
  return it->second;
}

BucketSettings read_bucket_settings(const json& dataset, const json& args, const std::string& model_family,
                                    const std::string& where, std::vector<std::string>* warnings) {
  if (!dataset.is_object()) throw InputError(where + ": a dataset entry must be a JSON object");
  BucketSettings s;
  std::string type = "pixel";
  if (const json* v = lookup(dataset, args, "resolution_type")) type = text(*v, where, "resolution_type");
  if (type != "pixel" && type != "area" && type != "pixel_area")
    bad(where, "resolution_type", json(type), "expected pixel, area or pixel_area");
  const json* res = lookup(dataset, args, "resolution");
  if (!res) throw InputError(where + ": resolution is missing");
  s.resolution = number(*res, where, "resolution");
  if (s.resolution <= 0) bad(where, "resolution", *res, "must be positive");
  const auto optional_size = [&](const char* key) {
    const json* v = lookup(dataset, args, key);
    if (!v) return 0.0;
    const double d = number(*v, where, key);
    if (d < 0) bad(where, key, *v, "must not be negative");
    return d;
  };
  s.minimum_image_size = optional_size("minimum_image_size");
  s.maximum_image_size = optional_size("maximum_image_size");
  s.target_downsample_size = optional_size("target_downsample_size");
  if (type == "pixel_area") {
    // A pixel edge becomes the megapixels of its square; the size limits likewise (DataBackendFactory).
    if (s.resolution != std::floor(s.resolution))
      bad(where, "resolution", *res, "pixel_area needs an integer pixel edge such as 1024");
    s.resolution = s.resolution * s.resolution / 1e6;
    for (double* d : {&s.minimum_image_size, &s.maximum_image_size, &s.target_downsample_size})
      if (*d > 0) *d = *d * *d / 1e6;
    type = "area";
  }
  s.resolution_type = type == "pixel" ? ResolutionType::Pixel : ResolutionType::Area;
  if (s.resolution_type == ResolutionType::Pixel && s.resolution != std::floor(s.resolution))
    bad(where, "resolution", *res, "pixel resolution must be an integer number of pixels");
  if (s.resolution_type == ResolutionType::Pixel && s.target_downsample_size > 0 &&
      s.target_downsample_size != std::floor(s.target_downsample_size))
    bad(where, "target_downsample_size", json(s.target_downsample_size),
        "must be an integer with resolution_type pixel");
  if (s.resolution_type == ResolutionType::Area && s.minimum_image_size > 5)
    bad(where, "minimum_image_size", json(s.minimum_image_size),
        "is in megapixels with resolution_type area (SimpleTuner refuses values over 5)");
  if (s.maximum_image_size > 0 && s.target_downsample_size <= 0)
    bad(where, "maximum_image_size", json(s.maximum_image_size), "needs target_downsample_size as well");
  if (s.resolution_type == ResolutionType::Area && s.maximum_image_size > 5)
    bad(where, "maximum_image_size", json(s.maximum_image_size),
        "is in megapixels with resolution_type area (SimpleTuner refuses values over 5)");
  if (s.resolution_type == ResolutionType::Pixel && s.maximum_image_size > 0 && s.maximum_image_size < 512)
    bad(where, "maximum_image_size", json(s.maximum_image_size),
        "is in pixels with resolution_type pixel (SimpleTuner refuses values under 512)");
  if (const json* v = lookup(dataset, args, "crop")) s.crop = boolean(*v, where, "crop");
  if (const json* v = lookup(dataset, args, "crop_style")) {
    const std::string style = text(*v, where, "crop_style");
    if (style == "center" || style == "centre")
      s.crop_style = CropStyle::Center;
    else if (style == "corner")
      s.crop_style = CropStyle::Corner;
    else if (style == "random")
      s.crop_style = CropStyle::Random;
    else if (style == "face")
      bad(where, "crop_style", *v, "face cropping needs a face detector the studio does not have");
    else
      bad(where, "crop_style", *v, "expected center, corner or random");
  }
  if (const json* v = lookup(dataset, args, "crop_aspect")) {
    const std::string aspect = text(*v, where, "crop_aspect");
    if (aspect == "square")
      s.crop_aspect = CropAspect::Square;
    else if (aspect == "preserve")
      s.crop_aspect = CropAspect::Preserve;
    else if (aspect == "closest")
      s.crop_aspect = CropAspect::Closest;
    else if (aspect == "random")
      s.crop_aspect = CropAspect::Random;
    else
      bad(where, "crop_aspect", *v, "expected square, preserve, closest or random");
  }
  if (const json* v = lookup(dataset, args, "crop_aspect_buckets")) {
    if (!v->is_array()) bad(where, "crop_aspect_buckets", *v, "expected a list of numbers or {aspect, weight}");
    bool dicts = false;
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& b = v->at(i);
      const std::string key = "crop_aspect_buckets[" + std::to_string(i) + "]";
      if (i == 0) dicts = b.is_object();
      if (b.is_object() != dicts) bad(where, key, b, "mixes numbers and {aspect, weight} entries");
      double aspect = 0;
      if (dicts) {
        if (!b.contains("aspect")) bad(where, key, b, "has no aspect");
        aspect = number(b.at("aspect"), where, key + ".aspect");
        if (!b.contains("weight")) bad(where, key, b, "has no weight");
        const double w = number(b.at("weight"), where, key + ".weight");
        if (w < 0) bad(where, key + ".weight", b.at("weight"), "must not be negative");
        s.crop_aspect_weights.push_back(w);
      } else {
        aspect = number(b, where, key);
      }
      if (aspect <= 0) bad(where, key, b, "an aspect must be positive");
      s.crop_aspect_buckets.push_back(aspect);
    }
  }
  if (s.crop && (s.crop_aspect == CropAspect::Closest || s.crop_aspect == CropAspect::Random)) {
    if (s.crop_aspect_buckets.empty())
      throw InputError(where + ": crop_aspect " + (s.crop_aspect == CropAspect::Closest ? "closest" : "random") +
                       " needs crop_aspect_buckets");
    if (s.crop_aspect == CropAspect::Random && !s.crop_aspect_weights.empty()) {
      // SimpleTuner compares the float sum with 1.0 exactly.
      double total = 0;
      for (double w : s.crop_aspect_weights) total += w;
      if (total != 1.0)
        bad(where, "crop_aspect_buckets", *lookup(dataset, args, "crop_aspect_buckets"),
            "the weights must add up to 1");
    }
  }
  if (const json* v = lookup(dataset, args, "max_upscale_threshold")) {
    const double t = number(*v, where, "max_upscale_threshold");
    if (t < 0) bad(where, "max_upscale_threshold", *v, "must not be negative");
    s.max_upscale_threshold = t;
  }
  if (const json* v = lookup(json::object(), args, "aspect_bucket_rounding")) {
    const double r = number(*v, where, "aspect_bucket_rounding");
    if (r != std::floor(r) || r < 1 || r > 9) bad(where, "aspect_bucket_rounding", *v, "expected an integer 1..9");
    s.rounding = static_cast<int>(r);
  }
  if (const json* v = lookup(json::object(), args, "aspect_bucket_alignment")) {
    const double a = number(*v, where, "aspect_bucket_alignment");
    if (a != std::floor(a) || a < 1 || a > 1024)
      bad(where, "aspect_bucket_alignment", *v, "expected a positive integer number of pixels");
    s.alignment = static_cast<int>(a);
  }
  if (const auto forced = required_bucket_alignment(model_family); forced && *forced != s.alignment) {
    if (warnings && lookup(json::object(), args, "aspect_bucket_alignment"))
      warnings->push_back(where + ": aspect_bucket_alignment " + std::to_string(s.alignment) + " is overridden to " +
                          std::to_string(*forced) + " for " + model_family + ", as SimpleTuner does");
    s.alignment = *forced;
  }
  return s;
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % n;
}

double python_round(double x, int digits) {
  // glibc's printf rounds the exact binary value half-to-even, as CPython's round(x, n) does.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return std::strtod(buf, nullptr);
}

std::string python_float_str(double rounded, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, rounded);
  std::string s = buf;
  while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

int round_to_multiple(double value, int multiple) {
  const double r = std::nearbyint(value / multiple) * multiple;  // Python round(): ties to even
  return std::max(static_cast<int>(r), multiple);
}

double image_aspect(int width, int height, int rounding) {
  return python_round(static_cast<double>(width) / height, rounding);
}

std::string too_small_reason(const BucketSettings& s, int width, int height) {
  if (s.minimum_image_size <= 0) return "";
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  char min_text[64];
  std::snprintf(min_text, sizeof min_text, "%g", s.minimum_image_size);
  if (s.resolution_type == ResolutionType::Pixel) {
    if (s.minimum_image_size <= width && s.minimum_image_size <= height) return "";
    return size + " has a side under minimum_image_size " + min_text + " px";
  }
  const double min_pixels = s.minimum_image_size * 1e6;
  if (s.crop && s.crop_aspect == CropAspect::Square) {
    // A square crop also needs both sides to hold the square of that area.
    const double edge = std::floor(std::sqrt(min_pixels));
    if (!(edge <= width && edge <= height))
      return size + " has a side under " + std::to_string(static_cast<int>(edge)) +
             " px, the square edge of minimum_image_size " + min_text + " MP";
  }
  if (min_pixels <= static_cast<double>(width) * height) return "";
  return size + " is under minimum_image_size " + min_text + " MP";
}

AspectBucketer::AspectBucketer(BucketSettings settings) : settings_(std::move(settings)) {
  if (settings_.resolution_type == ResolutionType::Pixel) {
    target_area_ = settings_.resolution;
    pixel_resolution_ = static_cast<int>(settings_.resolution);
  } else {
    // Round megapixel values map to the pixel area of the usual square edges (0.25 -> 512^2, 1.0 -> 1024^2).
    static const std::pair<double, double> known[] = {
        {0.25, 512.0 * 512}, {0.5, 768.0 * 768}, {1.0, 1024.0 * 1024}, {2.0, 1536.0 * 1536}, {4.0, 2048.0 * 2048}};
    target_area_ = settings_.resolution * 1e6;
    for (const auto& [mp, area] : known)
      if (std::fabs(settings_.resolution - mp) < 0.05) {
        target_area_ = area;
        break;
      }
    pixel_resolution_ = round_to_multiple(std::sqrt(target_area_), settings_.alignment);
  }
}

AspectBucketer::Sizes AspectBucketer::size_for(double aspect, double resolution, int W, int H) {
  const int align = settings_.alignment;
  const int rounding = settings_.rounding;
  const double raw = static_cast<double>(W) / H;
  if (settings_.resolution_type == ResolutionType::Pixel) {
    const int res = static_cast<int>(resolution);
    int wt, ht;
    if (W < H) {
      wt = res;
      ht = trunc_int(wt / aspect);
    } else {
      ht = res;
      wt = trunc_int(ht * aspect);
    }
    const int wa = round_to_multiple(wt, align), ha = round_to_multiple(ht, align);
    int wi, hi;
    if (raw >= 1.0) {
      hi = std::max(ha, ht);
      wi = trunc_int(hi * raw);
      if (wi < wa) {
        wi = wa;
        hi = trunc_int(wi / raw);
      }
    } else {
      wi = std::max(wa, wt);
      hi = trunc_int(wi / raw);
      if (hi < ha) {
        hi = ha;
        wi = trunc_int(hi * raw);
      }
    }
    return {wa, ha, wi, hi, image_aspect(wa, ha, rounding)};
  }
  const int edge = round_to_multiple(trunc_int(std::sqrt(resolution * 1e6)), align);
  if (aspect == 1.0 && W == H) return {edge, edge, edge, edge, aspect};
  int wt = round_to_multiple(edge * std::sqrt(aspect), align);
  int ht = round_to_multiple(edge / std::sqrt(aspect), align);
  int wi, hi;
  if (wt < ht) {
    wi = wt;
    hi = trunc_int(wi / raw);
  } else {
    hi = ht;
    wi = trunc_int(hi * raw);
  }
  const double adjusted = image_aspect(wt, ht, rounding);
  // The first image of a bucket fixes that bucket's target size for the dataset's resolution.
  auto& by_aspect = map_[resolution];
  const std::string key = python_float_str(adjusted, rounding);
  const auto stored = by_aspect.find(key);
  if (stored != by_aspect.end()) std::tie(wt, ht) = stored->second;
  if (wt > wi || ht > hi) {
    int wd, hd;
    if (wt > wi) {
      wd = wt - wi;
      hd = trunc_int(wd / raw);
    } else {
      hd = ht - hi;
      wd = trunc_int(hd * raw);
    }
    hi += hd;
    wi += wd;
  }
  if (stored == by_aspect.end()) by_aspect[key] = {wt, ht};
  return {wt, ht, wi, hi, adjusted};
}

double AspectBucketer::select_aspect(double aspect, int W, int H, std::mt19937_64& rng) {
  const auto& buckets = settings_.crop_aspect_buckets;
  if (settings_.crop_aspect == CropAspect::Closest) {
    std::size_t best = 0;  // the first of equally close buckets, as Python's min()
    for (std::size_t i = 1; i < buckets.size(); ++i)
      if (std::fabs(buckets[i] - aspect) < std::fabs(buckets[best] - aspect)) best = i;
    return buckets[best];
  }
  if (!settings_.crop_aspect_weights.empty()) {
    const auto& w = settings_.crop_aspect_weights;
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    double cumulative = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      cumulative += w[i];
      if (u < cumulative) return buckets[i];
    }
    return buckets.back();
  }
  const std::vector<double> usable = random_aspect_choices(W, H);
  if (usable.empty()) return 1.0;  // nothing fits: a square crop, as SimpleTuner falls back
  return usable[uniform_below(rng, usable.size())];
}

std::vector<double> AspectBucketer::random_aspect_choices(int W, int H) {
  std::vector<double> usable;
  for (double b : settings_.crop_aspect_buckets) {
    if (!settings_.max_upscale_threshold) {
      usable.push_back(b);
      continue;
    }
    // Keep the aspects whose target stays within the threshold of the original on both sides.
    const Sizes s = size_for(b, settings_.resolution, W, H);
    const double limit = 1 + *settings_.max_upscale_threshold;
    if (s.target_w <= W * limit && s.target_h <= H * limit) usable.push_back(b);
  }
  return usable;
}

void AspectBucketer::crop_at(SampleGeometry& g, std::mt19937_64& rng) const {
  const int iw = g.resize_width, ih = g.resize_height, tw = g.target_width, th = g.target_height;
  switch (settings_.crop_style) {
    case CropStyle::Corner:
      g.crop_left = g.crop_top = 0;
      break;
    case CropStyle::Center:
      g.crop_left = std::max(0, trunc_int((iw - tw) / 2.0));
      g.crop_top = std::max(0, trunc_int((ih - th) / 2.0));
      break;
    case CropStyle::Random: {
      const int max_left = std::max(0, iw - tw), max_top = std::max(0, ih - th);
      g.crop_left = max_left > 0 ? static_cast<int>(uniform_below(rng, uint64_t(max_left) + 1)) : 0;
      g.crop_top = max_top > 0 ? static_cast<int>(uniform_below(rng, uint64_t(max_top) + 1)) : 0;
      break;
    }
  }
}

SampleGeometry AspectBucketer::prepare(int W, int H, std::mt19937_64& rng) {
  if (W <= 0 || H <= 0)
    throw InputError("aspect bucketing: invalid image size " + std::to_string(W) + "x" + std::to_string(H));
  const BucketSettings& s = settings_;
  SampleGeometry g;
  g.original_width = W;
  g.original_height = H;
  const double original_aspect = image_aspect(W, H, s.rounding);
  const int pr = pixel_resolution_;
  double aspect = original_aspect;
  int tw, th, iw, ih;
  if (s.crop && s.crop_aspect == CropAspect::Square) {
    tw = th = pr;
    const Sizes sq = size_for(1.0, s.resolution, W, H);
    iw = sq.inter_w;
    ih = sq.inter_h;
    aspect = 1.0;
  } else {
    if (s.crop && (s.crop_aspect == CropAspect::Random || s.crop_aspect == CropAspect::Closest))
      aspect = select_aspect(original_aspect, W, H, rng);
    const Sizes z = size_for(aspect, s.resolution, W, H);
    tw = z.target_w;
    th = z.target_h;
    iw = z.inter_w;
    ih = z.inter_h;
    aspect = image_aspect(tw, th, s.rounding);
  }
  // A square bucket whose intermediary came out under the pixel resolution is resized to that square.
  if (aspect == 1.0 && iw < pr) iw = ih = pr;
  if (aspect == 1.0) tw = th = pr;
  g.intermediary_width = iw;
  g.intermediary_height = ih;
  g.target_width = tw;
  g.target_height = th;
  g.aspect = aspect;
  g.bucket = python_float_str(aspect, s.rounding);

  if (s.crop) {
    bool downsample = false;
    if (s.maximum_image_size > 0 && s.target_downsample_size > 0) {
      if (s.resolution_type == ResolutionType::Pixel)
        downsample = W != pr || H != pr;
      else
        downsample = static_cast<double>(W) * H != target_area_ || W < tw || H < th;
    }
    if (downsample) {
      // Resize to the downsample size (original aspect), grown so neither side is under the target.
      const Sizes d = size_for(original_aspect, s.target_downsample_size, W, H);
      int dw = d.inter_w, dh = d.inter_h;
      if (dw < tw) {
        const double scale = static_cast<double>(tw) / dw;
        dh = trunc_int(dh * scale);
        dw = tw;
      } else if (dh < th) {
        const double scale = static_cast<double>(th) / dh;
        dw = trunc_int(dw * scale);
        dh = th;
      }
      g.resize_width = dw;
      g.resize_height = dh;
    } else {
      g.resize_width = iw;
      g.resize_height = ih;
    }
    crop_at(g, rng);
  } else if (tw != iw || th != ih) {
    g.resize_width = iw;
    g.resize_height = ih;
    crop_at(g, rng);
  } else {
    g.resize_width = tw;
    g.resize_height = th;
  }
  return g;
}

std::array<int64_t, 6> sdxl_time_ids(const SampleGeometry& g) {
  // collate.py's compute_time_ids takes the intermediary size as the "original" size.
  return {g.intermediary_height, g.intermediary_width, g.crop_top, g.crop_left, g.target_height, g.target_width};
}

BucketBatchSampler::BucketBatchSampler(const std::vector<std::string>& image_buckets, int64_t batch_size, uint64_t seed)
    : batch_size_(batch_size), seed_(seed) {
  if (batch_size <= 0)
    throw InputError("aspect buckets: batch size must be positive, got " + std::to_string(batch_size));
  std::map<std::string, std::size_t> index;
  std::vector<std::pair<std::string, std::vector<int64_t>>> all;
  for (std::size_t i = 0; i < image_buckets.size(); ++i) {
    const auto [it, added] = index.emplace(image_buckets[i], all.size());
    if (added) all.push_back({image_buckets[i], {}});
    all[it->second].second.push_back(static_cast<int64_t>(i));
  }
  for (auto& b : all) {
    if (static_cast<int64_t>(b.second.size()) < batch_size_)
      pruned_.push_back({b.first, static_cast<int64_t>(b.second.size())});
    else
      buckets_.push_back(std::move(b));
  }
  if (buckets_.empty())
    throw InputError("aspect buckets: no bucket holds a full batch of " + std::to_string(batch_size) + " images (" +
                     std::to_string(image_buckets.size()) + " images in " + std::to_string(all.size()) +
                     " buckets); lower the batch size or add images");
}

int64_t BucketBatchSampler::batches_per_epoch() const {
  int64_t n = 0;
  for (const auto& b : buckets_) n += (static_cast<int64_t>(b.second.size()) + batch_size_ - 1) / batch_size_;
  return n;
}

std::vector<BucketBatch> BucketBatchSampler::epoch(int64_t epoch) const {
  std::vector<std::vector<BucketBatch>> per_bucket;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    // One generator per (seed, epoch, bucket): a bucket's order does not depend on the others.
    std::seed_seq seq{uint32_t(seed_), uint32_t(seed_ >> 32), uint32_t(epoch), uint32_t(uint64_t(epoch) >> 32),
                      uint32_t(b)};
    std::mt19937_64 rng(seq);
    std::vector<int64_t> order = buckets_[b].second;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_below(rng, i)]);
    std::vector<BucketBatch> batches;
    for (std::size_t start = 0; start < order.size(); start += batch_size_) {
      BucketBatch batch{buckets_[b].first, {}};
      const std::size_t end = std::min(order.size(), start + std::size_t(batch_size_));
      batch.images.assign(order.begin() + start, order.begin() + end);
      // Fill a short last batch with other images of this bucket (drawn without repeats from the rest).
      std::vector<int64_t> rest(order.begin(), order.begin() + start);
      while (static_cast<int64_t>(batch.images.size()) < batch_size_) {
        const std::size_t pick = uniform_below(rng, rest.size());
        batch.images.push_back(rest[pick]);
        rest.erase(rest.begin() + pick);
      }
      batches.push_back(std::move(batch));
    }
    per_bucket.push_back(std::move(batches));
  }
  // Buckets take turns, one batch each, until all are spent.
  std::vector<BucketBatch> out;
  std::vector<std::size_t> next(per_bucket.size(), 0);
  for (bool any = true; any;) {
    any = false;
    for (std::size_t b = 0; b < per_bucket.size(); ++b)
      if (next[b] < per_bucket[b].size()) {
        out.push_back(per_bucket[b][next[b]++]);
        any = true;
      }
  }
  return out;
}

}  // namespace repa::data
