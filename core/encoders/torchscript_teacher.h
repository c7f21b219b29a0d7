// Any other vision encoder as a TorchScript module: forward(pixels) returning (B,N,D) tokens, or a dict with
// "x_norm_patchtokens" (and optionally "x_norm_clstoken"), as DINOv2's forward_features does.
#pragma once
#include <torch/script.h>

#include "core/encoders/teacher.h"

namespace repa::encoders {

class TorchScriptTeacher : public Teacher {
 public:
  // Loads `path` (announcing through options.on_notice that TorchScript runs code from that file), freezes
  // it and probes its token width with one forward of a blank image.
  TorchScriptTeacher(const std::string& path, const TeacherOptions& options);
  TeacherTokens encode(const torch::Tensor& pixels) override;
  int64_t token_dim() const override { return dim_; }
  std::string describe() const override { return "TorchScript encoder " + path_; }

 private:
  TeacherTokens run(const torch::Tensor& model_input);
  std::string path_;
  TeacherOptions options_;
  torch::jit::Module module_;
  torch::Dtype dtype_ = torch::kFloat32;
  int64_t dim_ = 0;
};

}  // namespace repa::encoders
