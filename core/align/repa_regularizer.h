// REPA for transformer backbones (SimpleTuner's CREPA in image mode): the hidden states of one block,
// projected to the teacher's width and aligned token by token, loss = −weight(step) · mean cosine.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/align/alignment_head.h"
#include "core/align/coefficient_schedule.h"

namespace repa::align {

struct RepaOptions {
  bool enabled = false;       // crepa_enabled
  double lambda = 0.5;        // crepa_lambda; 0 switches the regularizer off (no loss, nothing logged)
  int64_t block_index = 8;    // crepa_block_index: 0-based block whose output is tapped
  bool spatial_align = true;  // crepa_spatial_align: false mean-pools both sides when counts differ
  AlignmentHeadOptions head;
  ScheduleConfig schedule;

  static RepaOptions from_json(const nlohmann::json& config, int64_t max_train_steps);
};

class RepaRegularizer {
 public:
  // hidden_dim: the tapped block's width; teacher_dims: one width per teacher (one projector each).
  RepaRegularizer(RepaOptions options, int64_t hidden_dim, std::vector<int64_t> teacher_dims);

  // hidden (B, S, D_h) from the tapped block; teachers[i] (B, N_i, D_i) (or (B, D_i) CLS tokens in cls mode).
  // hidden_grid is the model's token grid (needed only for iREPA on non-square grids; inferred otherwise).
  // Scalars: crepa_loss, crepa_alignment_score, crepa_similarity_self, crepa_weight, crepa_cutoff and, once
  // a similarity was seen, crepa_alignment_score_ema. Advances the coefficient schedule.
  AlignmentOutput compute(const torch::Tensor& hidden, const std::vector<torch::Tensor>& teachers, int64_t step,
                          std::optional<TokenGrid> hidden_grid = std::nullopt);

  // Throws InputError when crepa_block_index does not name one of the model's `num_blocks` blocks.
  void check_block_index(int64_t num_blocks) const;

  ProjectorSet& projectors() { return projectors_; }
  std::vector<torch::Tensor> parameters() const { return projectors_->parameters(); }
  CoefficientSchedule& schedule() { return schedule_; }
  const CoefficientSchedule& schedule() const { return schedule_; }
  const RepaOptions& options() const { return options_; }
  void to(const torch::Device& device) { projectors_->to(device, torch::kFloat32); }

  // The schedule's state, to save with a checkpoint (projector weights go with the model's weights).
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  RepaOptions options_;
  int64_t hidden_dim_;
  std::vector<int64_t> teacher_dims_;
  ProjectorSet projectors_;
  CoefficientSchedule schedule_;
};

}  // namespace repa::align
