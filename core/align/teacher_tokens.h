// Which teacher tokens the regularizers align to.
#pragma once
#include <torch/types.h>

#include <string>

namespace repa::align {

enum class TeacherTokens {
  Patch,  // the encoder's normalised patch tokens (B, N, D): what the REPA and U-REPA papers align to
  Cls,    // SimpleTuner compatibility: its torch.hub DINOv2 call returns only the CLS token, so every model
          // model is compared with the one CLS token (B, 1, D) after its tokens are resampled to a single one
};

TeacherTokens parse_teacher_tokens(const std::string& name);  // "patch" | "cls"
std::string to_string(TeacherTokens mode);

// The tokens to align to: the patch tokens, or the CLS token as a single token (B, 1, D).
torch::Tensor select_teacher_tokens(TeacherTokens mode, const torch::Tensor& patch_tokens,
                                    const torch::Tensor& cls_token);

}  // namespace repa::align
