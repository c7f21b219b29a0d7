// The frozen teacher whose tokens REPA / U-REPA align to: a native DINOv2 (named, with weights from a file
// or the cache, or randomly initialised for demos) or any TorchScript module. Eval mode, no gradients;
// fp32 on CPU, bf16/fp16 on CUDA when asked.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/encoders/dinov2.h"
#include "core/encoders/preprocessing.h"

namespace repa::encoders {

struct TeacherTokens {
  torch::Tensor patch_tokens;  // (B, N, D) normalised
  torch::Tensor cls_token;     // (B, D); undefined when a TorchScript teacher does not return one
};

struct TeacherOptions {
  std::string encoder = "dinov2_vitg14";  // name or SimpleTuner alias (crepa_model / crepa_encoder)
  std::string weights;                    // "" = the cache; a .safetensors, or a TorchScript archive
  bool random_init = false;               // demo only: seeded random weights of the named size
  uint64_t seed = 0;
  Preprocessing preprocessing = Preprocessing::SimpleTuner;
  int64_t image_size = 518;               // SimpleTuner's crepa_encoder_image_size
  int64_t resolution = 256;               // training images' side (the REPA recipe's grid)
  torch::Device device = torch::kCPU;
  // Half precision on CUDA (kBFloat16 or kHalf); CPU always runs fp32.
  std::optional<torch::Dtype> half_precision;
  // Where one-line remarks go (the TorchScript warning); default: the log.
  std::function<void(const std::string&)> on_notice;

  // From a resolved run config: crepa_model (or crepa_encoder), crepa_encoder_image_size, resolution, seed,
  // studio.encoder_weights, studio.encoder_random_init, studio.encoder_preprocessing, studio.device and
  // mixed_precision (bf16 / fp16 on CUDA).
  static TeacherOptions from_config(const nlohmann::json& config);
};

class Teacher {
 public:
  virtual ~Teacher() = default;
  // Images (B,3,H,W) with pixels in [0,1]; preprocessing is the teacher's.
  virtual TeacherTokens encode(const torch::Tensor& pixels) = 0;
  virtual int64_t token_dim() const = 0;
  virtual std::string describe() const = 0;
  // What determines the tokens besides the image (encoder, weights, preprocessing, input size), as one
  // string: part of the key of cached teacher tokens.
  std::string identity() const { return identity_; }

 private:
  friend std::unique_ptr<Teacher> make_teacher(const TeacherOptions& options);
  std::string identity_;
};

// A native DINOv2 teacher around an already built model.
class Dinov2Teacher : public Teacher {
 public:
  Dinov2Teacher(Dinov2 model, const TeacherOptions& options, std::string description);
  TeacherTokens encode(const torch::Tensor& pixels) override;
  int64_t token_dim() const override { return model_->config().embed_dim; }
  std::string describe() const override { return description_; }
  Dinov2& model() { return model_; }

 private:
  Dinov2 model_;
  TeacherOptions options_;
  torch::Dtype dtype_ = torch::kFloat32;
  std::string description_;
};

// Builds the teacher the options ask for: a TorchScript file when `weights` is one (a zip archive), else the
// named DINOv2 from `weights`, the cache, or random init. Errors name the file or the unknown name.
std::unique_ptr<Teacher> make_teacher(const TeacherOptions& options);

// Whether `path` is a TorchScript archive (zip) rather than a safetensors file.
bool is_torchscript_file(const std::string& path);

}  // namespace repa::encoders
