#include "core/align/urepa_regularizer.h"

#include <torch/torch.h>

#include <utility>

#include "core/align/config_values.h"
#include "core/base/error.h"
#include "core/base/torch_compat.h"

namespace repa::align {

UrepaOptions UrepaOptions::from_json(const nlohmann::json& config, int64_t max_train_steps) {
  namespace cv = config_values;
  UrepaOptions out;
  out.enabled = cv::flag(config, "urepa_enabled").value_or(false);
  // SimpleTuner reads `urepa_manifold_weight or 3.0`, turning an explicit 0 into 3; here 0 means no
  // manifold term, which is what a user who types 0 asks for.
  out.manifold_weight = cv::number(config, "urepa_manifold_weight").value_or(3.0);
  if (config.is_object() && config.contains("studio") && config.at("studio").is_object())
    out.manifold_reduction =
        parse_manifold_reduction(cv::text(config.at("studio"), "manifold_reduction").value_or("per_image"));
  out.head = AlignmentHeadOptions::from_json(config);
  out.schedule = ScheduleConfig::from_json(config, "urepa", max_train_steps);
  return out;
}

UrepaRegularizer::UrepaRegularizer(UrepaOptions options, int64_t mid_channels, std::vector<int64_t> teacher_dims)
    : options_(std::move(options)),
      mid_channels_(mid_channels),
      teacher_dims_(std::move(teacher_dims)),
      projectors_(options_.head, mid_channels_, teacher_dims_),
      schedule_(options_.schedule) {}

torch::Tensor mid_block_tokens(const torch::Tensor& mid) {
  if (!mid.defined() || mid.dim() != 4)
    throw InputError("U-REPA mid-block output: expected (B, C, h, w), got " +
                     (mid.defined() ? shape_string(mid) : std::string("nothing")));
  return mid.permute({0, 2, 3, 1}).reshape({mid.size(0), mid.size(2) * mid.size(3), mid.size(1)});
}

AlignmentOutput UrepaRegularizer::compute(const torch::Tensor& mid, const std::vector<torch::Tensor>& teachers,
                                          int64_t step) {
  const auto tokens = mid_block_tokens(mid);
  if (mid.size(1) != mid_channels_)
    throw InputError("U-REPA mid-block output " + shape_string(mid) + ": " + std::to_string(mid.size(1)) +
                     " channels, the projector expects " + std::to_string(mid_channels_));
  if (teachers.size() != projectors_->size())
    throw InputError("U-REPA: " + std::to_string(teachers.size()) + " teachers given, " +
                     std::to_string(projectors_->size()) + " were configured");

  repa::compat::AutocastDisabled fp32;
  const int64_t batch = mid.size(0);
  const TokenGrid grid{mid.size(2), mid.size(3)};
  torch::Tensor similarity_sum, manifold_sum;
  for (size_t i = 0; i < teachers.size(); ++i) {
    const auto teacher = prepare_teacher(teachers[i], options_.head, batch, teacher_dims_[i], i, "U-REPA");
    const auto projected = projectors_->at(i)->forward(tokens, grid);
    TokenAlignment how;  // U-REPA always resamples; SimpleTuner has no pooling switch for it
    if (options_.head.irepa) {
      how.projected_grid = grid;
      how.teacher_grid = teacher_grid(teacher.size(1));
    }
    const auto [p, e] = align_tokens(projected, teacher, how);
    const auto p_n = l2_normalize(p), e_n = l2_normalize(e);
    const auto similarity = mean_token_cosine(p_n, e_n);  // (B,)
    const auto manifold = manifold_loss(p_n, e_n, options_.manifold_reduction);
    similarity_sum = similarity_sum.defined() ? similarity_sum + similarity : similarity;
    manifold_sum = manifold_sum.defined() ? manifold_sum + manifold : manifold;
  }
  const double n_teachers = static_cast<double>(teachers.size());
  const auto mean_similarity = (similarity_sum / n_teachers).mean();
  const auto alignment_loss = -mean_similarity;
  const auto manifold = manifold_sum / n_teachers;

  const double similarity = mean_similarity.detach().item<double>();
  const double weight = schedule_.weight(step, similarity);
  AlignmentOutput out;
  out.scalars["urepa_similarity"] = similarity;
  if (weight == 0.0) {
    out.loss = torch::zeros({}, tokens.options().dtype(torch::kFloat32));
    for (const char* name : {"urepa_loss", "urepa_alignment_loss", "urepa_manifold_loss", "urepa_weight"})
      out.scalars[name] = 0.0;
    out.scalars["urepa_cutoff"] = 1.0;
    return out;
  }
  out.loss = weight * (alignment_loss + options_.manifold_weight * manifold);
  out.applied = true;
  out.scalars["urepa_loss"] = out.loss.detach().item<double>();
  out.scalars["urepa_alignment_loss"] = alignment_loss.detach().item<double>();
  out.scalars["urepa_manifold_loss"] = manifold.detach().item<double>();
  out.scalars["urepa_weight"] = weight;
  out.scalars["urepa_cutoff"] = 0.0;
  return out;
}

nlohmann::json UrepaRegularizer::state() const {
  return {{"schedule", schedule_.state()}};
}

void UrepaRegularizer::load_state(const nlohmann::json& state) {
  if (!state.is_object() || !state.contains("schedule"))
    throw InputError("U-REPA regularizer state: expected an object with 'schedule', got " + state.dump());
  schedule_.load_state(state.at("schedule"));
}

}  // namespace repa::align
