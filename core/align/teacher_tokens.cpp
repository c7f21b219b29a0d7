#include "core/align/teacher_tokens.h"

#include <torch/torch.h>

#include "core/align/token_aligner.h"
#include "core/base/error.h"

namespace repa::align {

TeacherTokens parse_teacher_tokens(const std::string& name) {
  if (name == "patch" || name.empty()) return TeacherTokens::Patch;
  if (name == "cls") return TeacherTokens::Cls;
  throw InputError("teacher_tokens '" + name + "': expected patch or cls");
}

std::string to_string(TeacherTokens mode) {
  return mode == TeacherTokens::Cls ? "cls" : "patch";
}

torch::Tensor select_teacher_tokens(TeacherTokens mode, const torch::Tensor& patch_tokens,
                                    const torch::Tensor& cls_token) {
  if (mode == TeacherTokens::Patch) {
    if (!patch_tokens.defined() || patch_tokens.dim() != 3)
      throw InputError("teacher patch tokens: expected (B, N, D), got " +
                       (patch_tokens.defined() ? shape_string(patch_tokens) : std::string("nothing")));
    return patch_tokens;
  }
  if (!cls_token.defined() || cls_token.dim() < 2 || cls_token.dim() > 3 ||
      (cls_token.dim() == 3 && cls_token.size(1) != 1))
    throw InputError("teacher CLS token: expected (B, D) or (B, 1, D), got " +
                     (cls_token.defined() ? shape_string(cls_token) : std::string("nothing")));
  return cls_token.dim() == 2 ? cls_token.unsqueeze(1) : cls_token;
}

}  // namespace repa::align
