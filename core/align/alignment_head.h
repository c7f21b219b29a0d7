// What REPA and U-REPA share: the projector settings read from the config, one projector per teacher, the
// teacher-side preparation (CLS selection, iREPA z-score, detaching) and the per-call result.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/align/projector.h"
#include "core/align/teacher_tokens.h"
#include "core/align/token_aligner.h"

namespace repa::align {

// One regularizer call's outcome. `loss` is a scalar to add to the diffusion loss: with a graph back to the
// hidden states and the projector(s) when applied, a constant 0 otherwise (weight 0 or regularizer off).
// `scalars` carries SimpleTuner's logged values under SimpleTuner's names (booleans as 0/1).
struct AlignmentOutput {
  torch::Tensor loss;
  bool applied = false;
  std::map<std::string, double> scalars;
};

struct AlignmentHeadOptions {
  ProjectorKind projector = ProjectorKind::LayerNormLinear;
  int64_t projector_hidden_dim = 2048;
  bool irepa = false;  // conv projector + teacher spatial z-score + grid-aware token alignment
  int64_t irepa_kernel_size = 3;
  double irepa_spatial_norm_alpha = 0.6;
  TeacherTokens teacher_tokens = TeacherTokens::Patch;

  // irepa_enabled, irepa_projector_kernel_size, irepa_spatial_norm_alpha and studio.projector,
  // studio.projector_hidden_dim, studio.teacher_tokens. irepa_enabled implies the conv projector, and
  // studio.projector "conv" implies iREPA.
  static AlignmentHeadOptions from_json(const nlohmann::json& config);
};

// One projector per teacher, registered as "projector" when there is one teacher (SimpleTuner's single head)
// and "projectors.<i>" when there are several, or always for the mlp kind, so that its names are REPA's
// checkpoint keys (projectors.0.0.weight, ...).
struct ProjectorSetImpl : torch::nn::Module {
  ProjectorSetImpl(const AlignmentHeadOptions& options, int64_t input_dim, const std::vector<int64_t>& teacher_dims);
  size_t size() const { return heads.size(); }
  Projector& at(size_t i) { return heads.at(i); }
  std::vector<Projector> heads;
};
TORCH_MODULE(ProjectorSet);

// Checks a teacher's tokens against its projector and the batch, and prepares them: fp32, detached (the
// teacher never receives gradients), iREPA z-score when on. `index` names the teacher in messages.
torch::Tensor prepare_teacher(const torch::Tensor& teacher, const AlignmentHeadOptions& options, int64_t batch,
                              int64_t expected_dim, size_t index, const char* regularizer);

// The projector tensors of a SimpleTuner checkpoint, renamed to this set's names (one teacher): SimpleTuner
// attaches its head to the model as `<prefix>_projector` (prefix "crepa" or "urepa"), an nn.Sequential
// (0 = LayerNorm, 1 = Linear) or iREPA's conv (projection.*). Other tensors are left out.
std::map<std::string, torch::Tensor> projector_weights_from_simpletuner(
    const std::map<std::string, torch::Tensor>& checkpoint, const std::string& prefix);

// The teacher's token grid for iREPA: inferred from its count against the square encoder input.
TokenGrid teacher_grid(int64_t token_count);

}  // namespace repa::align
