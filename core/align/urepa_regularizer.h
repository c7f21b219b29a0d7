// U-REPA for UNet backbones (SimpleTuner's UrepaRegularizer): the mid-block output (B, C, h, w) as h·w
// row-major tokens, projected and aligned to the teacher; loss = weight(step) · (−mean cos +
// urepa_manifold_weight · manifold), manifold = mean (P Pᵀ − E Eᵀ)² over token pairs of each image.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/align/alignment_head.h"
#include "core/align/coefficient_schedule.h"
#include "core/align/similarity.h"

namespace repa::align {

struct UrepaOptions {
  bool enabled = false;                                                // urepa_enabled
  double manifold_weight = 3.0;                                        // urepa_manifold_weight
  ManifoldReduction manifold_reduction = ManifoldReduction::PerImage;  // studio.manifold_reduction
  AlignmentHeadOptions head;
  ScheduleConfig schedule;  // urepa_* schedule keys

  static UrepaOptions from_json(const nlohmann::json& config, int64_t max_train_steps);
};

class UrepaRegularizer {
 public:
  // mid_channels: C of the mid-block output; teacher_dims: one width per teacher (one projector each).
  UrepaRegularizer(UrepaOptions options, int64_t mid_channels, std::vector<int64_t> teacher_dims);

  // mid (B, C, h, w); teachers[i] (B, N_i, D_i) (or (B, D_i) CLS tokens in cls mode). Scalars: urepa_loss,
  // urepa_alignment_loss, urepa_manifold_loss, urepa_similarity, urepa_weight, urepa_cutoff (all losses 0
  // when the weight is 0, as SimpleTuner reports them). Advances the coefficient schedule.
  AlignmentOutput compute(const torch::Tensor& mid, const std::vector<torch::Tensor>& teachers, int64_t step);

  ProjectorSet& projectors() { return projectors_; }
  std::vector<torch::Tensor> parameters() const { return projectors_->parameters(); }
  CoefficientSchedule& schedule() { return schedule_; }
  const CoefficientSchedule& schedule() const { return schedule_; }
  const UrepaOptions& options() const { return options_; }
  void to(const torch::Device& device) { projectors_->to(device, torch::kFloat32); }

  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  UrepaOptions options_;
  int64_t mid_channels_;
  std::vector<int64_t> teacher_dims_;
  ProjectorSet projectors_;
  CoefficientSchedule schedule_;
};

// (B, C, h, w) → (B, h·w, C), tokens in row-major order of the grid.
torch::Tensor mid_block_tokens(const torch::Tensor& mid);

}  // namespace repa::align
