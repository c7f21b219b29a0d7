#include "core/train/training_data.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "core/base/error.h"
#include "core/base/stop_request.h"
#include "core/config/family_pipeline.h"
#include "core/config/registry.h"
#include "core/data/demo_dataset.h"
#include "core/train/config_values.h"

namespace repa::train {

namespace fs = std::filesystem;

std::string resolve_dataset_dir(const nlohmann::json& config, const Reporter& report) {
  const auto& studio = studio_settings(config);
  std::string dir = text_or(studio, "dataset_dir", "");
  if (dir != kDemoDatasetName) return dir;
  std::string output = text_or(config, "output_dir", "runs");
  dir = (fs::path(output) / "demo-dataset").string();
  const int resolution = static_cast<int>(integer_or(config, "resolution", 32));
  const int count = data::generate_demo_dataset(dir, {64, resolution, static_cast<uint64_t>(integer_or(config, "seed", 0))});
  if (report) report("info", "demo dataset: " + std::to_string(count) + " generated shape images in " + dir);
  return dir;
}

data::TensorMap teacher_tokens(encoders::Teacher& teacher, const torch::Tensor& pixels) {
  torch::NoGradGuard no_grad;
  auto tokens = teacher.encode(((pixels + 1.0) * 0.5).clamp(0.0, 1.0));
  data::TensorMap out{{"patch", tokens.patch_tokens.to(torch::kCPU, torch::kFloat16)}};
  if (tokens.cls_token.defined()) out["cls"] = tokens.cls_token.to(torch::kCPU, torch::kFloat16);
  return out;
}

std::string to_string(TeacherInput input) { return input == TeacherInput::VaeDecode ? "vae_decode" : "pixels"; }

TeacherInputOptions TeacherInputOptions::from_config(const nlohmann::json& config) {
  const auto& studio = studio_settings(config);
  TeacherInputOptions out;
  const std::string input = text_or(studio, "teacher_input", "pixels");
  if (input == "vae_decode")
    out.input = TeacherInput::VaeDecode;
  else if (input != "pixels")
    throw InputError("studio.teacher_input: expected \"pixels\" or \"vae_decode\", got \"" + input + "\"");
  if (out.input == TeacherInput::VaeDecode && text_or(studio, "vae_path", "").empty())
    throw InputError("studio.teacher_input \"vae_decode\" decodes the clean latents with the VAE, but "
                     "studio.vae_path is empty (a pixel-space run): set studio.vae_path or use \"pixels\"");
  const bool urepa = flag_or(config, "urepa_enabled", false) && !flag_or(config, "crepa_enabled", false);
  out.use_tae = flag_or(config, urepa ? "urepa_use_tae" : "crepa_use_tae", false);
  out.drop_vae_encoder = flag_or(config, "crepa_drop_vae_encoder", false);
  return out;
}

nlohmann::json teacher_cache_settings(const nlohmann::json& config, const encoders::Teacher& teacher,
                                      const LatentSpace* latent_space) {
  const auto& studio = studio_settings(config);
  const auto options = encoders::TeacherOptions::from_config(config);
  nlohmann::json settings = {{"teacher", teacher.describe()},
          {"identity", teacher.identity()},
          {"weights", options.weights},
          {"random_init", options.random_init},
          {"random_seed", options.random_init ? options.seed : 0},
          {"image_size", options.image_size},
          {"preprocessing", text_or(studio, "encoder_preprocessing", "simpletuner")},
          {"resolution", integer_or(config, "resolution", 256)},
          {"crop", "adm_center"}};
  if (TeacherInputOptions::from_config(config).input == TeacherInput::VaeDecode) {
    if (!latent_space || latent_space->is_pixel_space())
      throw InputError("studio.teacher_input \"vae_decode\" needs the run's VAE (studio.vae_path)");
    settings["teacher_input"] = "vae_decode";
    settings["vae"] = latent_space->cache_settings(integer_or(config, "resolution", 256));
  }
  return settings;
}

bool uses_aspect_buckets(const nlohmann::json& config) {
  return repa::config::is_pipeline_family(config);
}

namespace {

// The bucket settings of a family run on studio.dataset_dir: SimpleTuner's defaults for a dataset entry that
// names nothing but its folder (crop false, crop_style random, crop_aspect square), with the run's resolution
// and its top-level resolution_type (SimpleTuner's default pixel_area), minimum_image_size and
// aspect_bucket_rounding. The family's aspect_bucket_alignment applies, except that the square bucket keeps the
// run's resolution: a resolution that is not a multiple of it aligns the buckets to the largest power of two
// dividing the resolution, said in the run log.
data::BucketSettings dataset_dir_bucket_settings(const nlohmann::json& config, const Reporter& report) {
  const std::string family = text_or(config, "model_family", "");
  const int64_t resolution = integer_or(config, "resolution", 256);
  nlohmann::json args = {{"resolution", resolution}};
  for (const char* key :
       {"resolution_type", "minimum_image_size", "aspect_bucket_rounding", "aspect_bucket_alignment"}) {
    const auto value = repa::config::config_value(config, key);
    if (!value.is_null()) args[key] = value;
  }
  if (!args.contains("resolution_type")) args["resolution_type"] = "pixel_area";
  if (args["resolution_type"] == "area")
    throw InputError(
        "resolution_type \"area\" reads resolution as megapixels, but a studio.dataset_dir run's "
        "resolution is the pixel edge it trains and samples at (" +
        std::to_string(resolution) +
        "): use \"pixel_area\" (the same area buckets, sized from the pixel edge) or \"pixel\", or "
        "describe the dataset in a multidatabackend.json (data_backend_config)");
  std::vector<std::string> warnings;
  auto settings = data::read_bucket_settings(nlohmann::json::object(), args, family, "aspect buckets", &warnings);
  for (const auto& warning : warnings)
    if (report) report("warning", warning);
  if (resolution % settings.alignment != 0) {
    int alignment = 1;
    while (resolution % (alignment * 2) == 0 && alignment * 2 < settings.alignment) alignment *= 2;
    if (report)
      report("info",
             "aspect buckets: resolution " + std::to_string(resolution) + " is not a multiple of " + family +
                 "'s aspect_bucket_alignment " + std::to_string(settings.alignment) + "; the buckets align to " +
                 std::to_string(alignment) + " px so that the square bucket stays " + std::to_string(resolution) + "x" +
                 std::to_string(resolution) + " (SimpleTuner would train it at " +
                 std::to_string(data::round_to_multiple(static_cast<double>(resolution), settings.alignment)) + " px)");
    settings.alignment = alignment;
  }
  return settings;
}

}  // namespace

TrainingData prepare_training_data(const nlohmann::json& config, LatentSpace& latent_space,
                                   encoders::Teacher* teacher, const Reporter& report, CacheShard shard) {
  const auto& studio = studio_settings(config);
  TrainingData out;
  // A multidatabackend.json (data_backend_config) names the folder and how to read it; it has no classes.
  const std::string backend_path = text_or(config, "data_backend_config", "");
  if (!backend_path.empty()) {
    out.backend =
        data::read_data_backend_config(backend_path, integer_or(config, "resolution", 256), uses_aspect_buckets(config));
    for (const auto& warning : out.backend->warnings)
      if (report) report("warning", warning);
  }
  const std::string dir = out.backend ? out.backend->image.instance_data_dir : resolve_dataset_dir(config, report);
  const bool class_labels = !out.backend && flag_or(studio, "class_labels", true);
  out.folder = data::scan_image_folder(dir, class_labels);
  const int threads = static_cast<int>(std::max<int64_t>(1, integer_or(studio, "num_workers", 2)));
  data::prepare_image_folder(out.folder, threads);
  if (out.backend) {
    const int64_t small = data::apply_dataset_backend(out.folder, out.backend->image);
    if (report && small > 0)
      report("info", std::to_string(small) + " images smaller than minimum_image_size " +
                         std::to_string(out.backend->image.minimum_image_size) + " skipped");
  }
  if (uses_aspect_buckets(config)) {
    // SimpleTuner's bucketing: the dataset entry's keys, the run's as fallbacks (on studio.dataset_dir, the
    // run's keys and SimpleTuner's dataset defaults); geometry in the folder's order.
    data::BucketSettings settings;
    if (out.backend) {
      std::vector<std::string> warnings;
      const std::string where = "data_backend_config '" + backend_path + "' dataset \"" + out.backend->image.id + "\"";
      // An entry without resolution_type takes the run's, whose default is SimpleTuner's pixel_area.
      nlohmann::json args = config;
      if (!args.contains("resolution_type") || args["resolution_type"].is_null())
        args["resolution_type"] = repa::config::config_value(config, "resolution_type");
      settings = data::read_bucket_settings(out.backend->image.entry, args, text_or(config, "model_family", ""), where,
                                            &warnings);
      for (const auto& warning : warnings)
        if (report) report("warning", warning);
    } else {
      settings = dataset_dir_bucket_settings(config, report);
    }
    out.buckets = data::assign_buckets(out.folder, settings, static_cast<uint64_t>(integer_or(config, "seed", 0)));
    for (const auto& small : out.buckets->too_small)
      if (report) report("warning", "skipped too small image " + small.path + ": " + small.reason);
    if (report) {
      std::map<std::string, int64_t> counts;
      for (const auto& g : out.buckets->geometry) ++counts[g.bucket + " (" + std::to_string(g.target_width) + "x" +
                                                            std::to_string(g.target_height) + ")"];
      std::string text;
      for (const auto& [bucket, n] : counts) text += (text.empty() ? "" : ", ") + bucket + ": " + std::to_string(n);
      report("info", "aspect buckets: " + text);
    }
  }
  throw_if_stop_requested("reading the dataset");
  for (const auto& bad : out.folder.corrupt)
    if (report) report("warning", "skipped corrupt image " + bad.path + ": " + bad.reason);
  if (report)
    report("info", "dataset " + dir + ": " + std::to_string(out.folder.images.size()) + " images" +
                       (class_labels ? ", " + std::to_string(out.folder.class_names.size()) + " classes" : "") +
                       (out.folder.corrupt.empty() ? "" : ", " + std::to_string(out.folder.corrupt.size()) +
                                                              " corrupt files skipped"));
  const int64_t configured_classes = integer_or(studio, "num_classes", 0);
  out.num_classes = class_labels ? (configured_classes > 0 ? configured_classes
                                                           : static_cast<int64_t>(out.folder.class_names.size()))
                                 : 0;
  if (class_labels && out.num_classes < static_cast<int64_t>(out.folder.class_names.size()))
    throw InputError("studio.num_classes is " + std::to_string(out.num_classes) + " but the dataset has " +
                     std::to_string(out.folder.class_names.size()) + " class folders");

  out.cache_root = text_or(studio, "cache_dir", "");
  if (out.cache_root.empty()) out.cache_root = (fs::path(dir) / ".repa-cache").string();
  const int64_t resolution = integer_or(config, "resolution", 256);
  const bool flips = flag_or(studio, "random_flip", false);
  const int batch = static_cast<int>(std::max<int64_t>(1, integer_or(config, "train_batch_size", 16)));
  // This process's share of the images to cache (all of them without data parallelism).
  // Bucketed images keep their geometry and cache key, laid out over the whole folder, in the share.
  data::ImageFolder share = out.folder;
  std::optional<data::BucketedImages> share_buckets = out.buckets;
  if (shard.world_size > 1) {
    share.images.clear();
    if (share_buckets) {
      share_buckets->geometry.clear();
      share_buckets->cache_keys.clear();
    }
    for (std::size_t i = 0; i < out.folder.images.size(); ++i)
      if (static_cast<int>(i % static_cast<std::size_t>(shard.world_size)) == shard.rank) {
        share.images.push_back(out.folder.images[i]);
        if (share_buckets) {
          share_buckets->geometry.push_back(out.buckets->geometry[i]);
          share_buckets->cache_keys.push_back(out.buckets->cache_keys[i]);
        }
      }
  }
  auto progress = [&](const char* what) {
    return [&report, what](int64_t done, int64_t total) {
      throw_if_stop_requested(std::string("caching ") + what);
      if (report && (done == total || done % 256 < 16))
        report("info", std::string("caching ") + what + ": " + std::to_string(done) + "/" + std::to_string(total));
    };
  };
  if (!latent_space.is_pixel_space()) {
    auto settings = latent_space.cache_settings(resolution);
    if (out.buckets) settings["buckets"] = data::bucket_cache_settings(*out.buckets);
    out.latents = std::make_unique<data::FeatureCache>(out.cache_root, "latents", settings);
    const auto encode = [&](const torch::Tensor& pixels) {
      throw_if_stop_requested("caching VAE latents");
      return latent_space.encode(pixels);
    };
    data::CacheFillReport r;
    if (!out.buckets)
      r = data::fill_cache(*out.latents, share, static_cast<int>(resolution), flips, batch, encode, progress("VAE latents"));
    else
      r = data::fill_bucketed_cache(*out.latents, share, *share_buckets, flips, encode, progress("VAE latents"));
    if (report)
      report("info", "latent cache " + out.latents->folder() + ": " + std::to_string(r.reused) + " reused, " +
                         std::to_string(r.computed) + " computed");
  }
  if (teacher) {
    const auto input = TeacherInputOptions::from_config(config);
    const bool decode = input.input == TeacherInput::VaeDecode;
    if (decode && report) {
      report("info", "teacher input: the VAE's reconstruction of each image, decode(posterior mean) clamped to "
                     "[0,1], as SimpleTuner feeds its teacher");
      if (input.use_tae)
        report("warning", "a tiny autoencoder (TAE) is asked for by crepa_use_tae / urepa_use_tae, but the studio "
                          "has none: the full VAE decodes the teacher's input");
    }
    auto settings = teacher_cache_settings(config, *teacher, &latent_space);
    // The teacher sees each bucket crop resized to its square input, as SimpleTuner's U-REPA / CREPA feed it.
    if (out.buckets) settings["crop"] = data::bucket_cache_settings(*out.buckets);
    out.tokens = std::make_unique<data::FeatureCache>(out.cache_root, "teacher_tokens", settings);
    const auto encode = [&](const torch::Tensor& pixels) {
      throw_if_stop_requested("caching teacher tokens");
      return teacher_tokens(*teacher, decode ? latent_space.reconstruct(pixels) : pixels);
    };
    data::CacheFillReport r;
    if (!out.buckets)
      r = data::fill_cache(*out.tokens, share, static_cast<int>(resolution), flips, batch, encode, progress("teacher tokens"));
    else
      r = data::fill_bucketed_cache(*out.tokens, share, *share_buckets, flips, encode, progress("teacher tokens"));
    if (report)
      report("info", "teacher-token cache " + out.tokens->folder() + ": " + std::to_string(r.reused) + " reused, " +
                         std::to_string(r.computed) + " computed in " + std::to_string(r.seconds) + " s");
  }
  return out;
}

}  // namespace repa::train
