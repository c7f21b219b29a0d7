// Everything a run reads from disk before its first step: the image folder (or the generated demo dataset),
// the corrupt files set aside, and the caches of VAE posteriors and teacher tokens, filled where missing.
// `repa-train cache` runs the same preparation ahead of a run.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/data/bucketed_images.h"
#include "core/data/data_backend_config.h"
#include "core/data/feature_cache.h"
#include "core/data/image_folder.h"
#include "core/encoders/teacher.h"
#include "core/train/latent_space.h"

namespace repa::train {

// studio.dataset_dir "@demo" asks for the generated demo dataset, made under <output_dir>/demo-dataset.
inline constexpr const char* kDemoDatasetName = "@demo";

struct TrainingData {
  data::ImageFolder folder;
  std::unique_ptr<data::FeatureCache> latents;  // only in latent space
  std::unique_ptr<data::FeatureCache> tokens;   // only with a teacher ("patch" and "cls")
  std::string cache_root;
  int64_t num_classes = 0;                      // 0: unconditional
  std::optional<data::DataBackendConfig> backend;  // when data_backend_config names a multidatabackend.json
  // Aspect buckets (every model_family run, on a multidatabackend.json or on studio.dataset_dir): each image's
  // geometry and cache key; the caches hold the bucket crops. Absent: ADM square crops at `resolution`.
  std::optional<data::BucketedImages> buckets;
};

using Reporter = std::function<void(const std::string& level, const std::string& message)>;

// What the alignment teacher sees (studio.teacher_input): the dataset's pixels, as REPA feeds them, or what
// the VAE makes of them, decode(posterior mean) clamped to [0,1], as SimpleTuner decodes its clean latents.
enum class TeacherInput { Pixels, VaeDecode };
std::string to_string(TeacherInput input);

struct TeacherInputOptions {
  TeacherInput input = TeacherInput::Pixels;
  // SimpleTuner's decode options; they act only with VaeDecode. use_tae (crepa_use_tae, or urepa_use_tae for
  // U-REPA) asks for a tiny autoencoder, which the studio does not have: the full VAE decodes, and says so.
  bool use_tae = false;
  bool drop_vae_encoder = false;  // crepa_drop_vae_encoder: free the VAE encoder once every cache is filled

  // From a resolved config. InputError naming studio.teacher_input for an unknown value, or for "vae_decode"
  // without a VAE (studio.vae_path empty).
  static TeacherInputOptions from_config(const nlohmann::json& config);
};

// The dataset folder a config names (generating the demo dataset when asked).
std::string resolve_dataset_dir(const nlohmann::json& config, const Reporter& report);

// Whether a run trains on aspect buckets: every natively trained model_family run, whether its images come
// from a data_backend_config or from studio.dataset_dir. Runs without a family (SiT, class-conditional UNet)
// train on ADM centre crops.
bool uses_aspect_buckets(const nlohmann::json& config);

// Scans, decodes and caches. `teacher` may be null (no alignment). Corrupt files are reported by name. With
// studio.teacher_input "vae_decode" the teacher's tokens are those of latent_space.reconstruct(image).
// Which images this process fills the caches for: under data parallelism rank r of w fills images i with
// i % w == r (bucketed runs too: each image keeps the geometry laid out over the whole folder), and every rank
// reads them all once all have finished.
struct CacheShard {
  int rank = 0;
  int world_size = 1;
};

TrainingData prepare_training_data(const nlohmann::json& config, LatentSpace& latent_space,
                                   encoders::Teacher* teacher, const Reporter& report, CacheShard shard = {});

// The teacher's tokens for a batch of pixels in [-1,1]: {"patch": (B,N,D) fp16, "cls": (B,D) fp16}.
data::TensorMap teacher_tokens(encoders::Teacher& teacher, const torch::Tensor& pixels);

// What keys the token cache: the teacher's description and every input setting; with "vae_decode" also the
// teacher input and the VAE (`latent_space`'s cache settings). Pixel-input keys are unchanged from earlier
// versions, so existing caches stay valid.
nlohmann::json teacher_cache_settings(const nlohmann::json& config, const encoders::Teacher& teacher,
                                      const LatentSpace* latent_space = nullptr);

}  // namespace repa::train
