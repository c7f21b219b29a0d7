#include "core/align/repa_regularizer.h"

#include <torch/torch.h>

#include <utility>

#include "core/align/config_values.h"
#include "core/align/similarity.h"
#include "core/base/error.h"
#include "core/base/torch_compat.h"

namespace repa::align {

RepaOptions RepaOptions::from_json(const nlohmann::json& config, int64_t max_train_steps) {
  namespace cv = config_values;
  RepaOptions out;
  out.enabled = cv::flag(config, "crepa_enabled").value_or(false);
  out.lambda = cv::number(config, "crepa_lambda").value_or(0.5);
  out.block_index = cv::integer(config, "crepa_block_index").value_or(8);
  out.spatial_align = cv::flag(config, "crepa_spatial_align").value_or(true);
  out.head = AlignmentHeadOptions::from_json(config);
  out.schedule = ScheduleConfig::from_json(config, "crepa", max_train_steps);
  return out;
}

RepaRegularizer::RepaRegularizer(RepaOptions options, int64_t hidden_dim, std::vector<int64_t> teacher_dims)
    : options_(std::move(options)),
      hidden_dim_(hidden_dim),
      teacher_dims_(std::move(teacher_dims)),
      projectors_(options_.head, hidden_dim_, teacher_dims_),
      schedule_(options_.schedule) {}

void RepaRegularizer::check_block_index(int64_t num_blocks) const {
  if (options_.block_index < 0 || options_.block_index >= num_blocks)
    throw InputError("config key 'crepa_block_index': block " + std::to_string(options_.block_index) +
                     " does not exist; the model has " + std::to_string(num_blocks) + " blocks (0.." +
                     std::to_string(num_blocks - 1) + ")");
}

AlignmentOutput RepaRegularizer::compute(const torch::Tensor& hidden, const std::vector<torch::Tensor>& teachers,
                                         int64_t step, std::optional<TokenGrid> hidden_grid) {
  if (!hidden.defined() || hidden.dim() != 3)
    throw InputError("REPA hidden states: expected (B, S, D) from block " + std::to_string(options_.block_index) +
                     ", got " + (hidden.defined() ? shape_string(hidden) : std::string("nothing")));
  if (hidden.size(2) != hidden_dim_)
    throw InputError("REPA hidden states " + shape_string(hidden) + ": width " + std::to_string(hidden.size(2)) +
                     ", the projector expects " + std::to_string(hidden_dim_));
  if (teachers.size() != projectors_->size())
    throw InputError("REPA: " + std::to_string(teachers.size()) + " teachers given, " +
                     std::to_string(projectors_->size()) + " were configured");
  AlignmentOutput out;
  out.loss = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
  // SimpleTuner skips the regularizer entirely (no schedule step, nothing logged) when lambda is 0.
  if (options_.lambda == 0.0) return out;

  repa::compat::AutocastDisabled fp32;
  const int64_t batch = hidden.size(0), tokens = hidden.size(1);
  std::optional<TokenGrid> grid = hidden_grid;
  if (grid && grid->tokens() != tokens)
    throw InputError("REPA hidden states " + shape_string(hidden) + ": grid " + std::to_string(grid->height) + "x" +
                     std::to_string(grid->width) + " does not hold " + std::to_string(tokens) + " tokens");
  if (options_.head.irepa && !grid) grid = infer_token_grid(tokens);

  torch::Tensor similarity_sum;
  for (size_t i = 0; i < teachers.size(); ++i) {
    const auto teacher = prepare_teacher(teachers[i], options_.head, batch, teacher_dims_[i], i, "REPA");
    auto projected = projectors_->at(i)->forward(hidden, grid);
    TokenAlignment how;
    how.spatial_align = options_.spatial_align;
    if (options_.head.irepa) {
      how.projected_grid = grid;
      how.teacher_grid = teacher_grid(teacher.size(1));
    }
    auto [p, e] = align_tokens(projected, teacher, how);
    const auto similarity = mean_cosine_similarity(p, e);  // (B,)
    similarity_sum = similarity_sum.defined() ? similarity_sum + similarity : similarity;
  }
  const auto similarity = similarity_sum / static_cast<double>(teachers.size());  // (B,), averaged over teachers
  const auto mean_similarity = similarity.mean();
  // In image mode there is one frame and no neighbours, so SimpleTuner's alignment score equals the self
  // similarity; both are logged.
  const double alignment_score = mean_similarity.detach().item<double>();
  const double weight = schedule_.weight(step, alignment_score);

  out.scalars["crepa_alignment_score"] = alignment_score;
  out.scalars["crepa_similarity_self"] = alignment_score;
  if (const auto ema = schedule_.similarity_ema()) out.scalars["crepa_alignment_score_ema"] = *ema;
  // A weight of 0 (cut off, warm-up step 0, or decayed to 0) is reported as a cut-off, as SimpleTuner does.
  if (weight == 0.0) {
    out.scalars["crepa_loss"] = 0.0;
    out.scalars["crepa_weight"] = 0.0;
    out.scalars["crepa_cutoff"] = 1.0;
    return out;
  }
  out.loss = -mean_similarity * weight;
  out.applied = true;
  out.scalars["crepa_loss"] = out.loss.detach().item<double>();
  out.scalars["crepa_weight"] = weight;
  out.scalars["crepa_cutoff"] = 0.0;
  return out;
}

nlohmann::json RepaRegularizer::state() const {
  return {{"schedule", schedule_.state()}};
}

void RepaRegularizer::load_state(const nlohmann::json& state) {
  if (!state.is_object() || !state.contains("schedule"))
    throw InputError("REPA regularizer state: expected an object with 'schedule', got " + state.dump());
  schedule_.load_state(state.at("schedule"));
}

}  // namespace repa::align
