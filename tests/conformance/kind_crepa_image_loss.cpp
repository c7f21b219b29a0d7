// crepa_image_loss: SimpleTuner's CrepaRegularizer in image mode over a sequence of steps (the schedule's
// similarity EMA and cut-off carry across them), with the gradients of the first step's loss.
#include "core/align/repa_regularizer.h"
#include "tests/conformance/regularizer_rows.h"

namespace {

using namespace repa::conformance;

Comparison check_crepa_image_loss(const Fixture& fixture) {
  const int64_t max_train_steps = std::stoll(fixture.meta_or("max_train_steps", "0"));
  const auto hidden = fixture.tensor("in.hidden");    // (K, B, S, Dh)
  const auto teacher = fixture.tensor("in.teacher");  // (K, B, N, De)
  repa::align::RepaRegularizer regularizer(repa::align::RepaOptions::from_json(fixture.config(), max_train_steps),
                                           hidden.size(3), {teacher.size(3)});
  return check_regularizer_rows(fixture, regularizer,
                                {{"crepa_loss", "out.loss"},
                                 {"crepa_weight", "out.weight"},
                                 {"crepa_cutoff", "out.cutoff", true},
                                 {"crepa_alignment_score", "out.alignment_score"},
                                 {"crepa_similarity_self", "out.similarity_self"},
                                 {"crepa_alignment_score_ema", "out.similarity_ema", false, true}});
}

}  // namespace

REPA_CONFORMANCE_KIND("crepa_image_loss", check_crepa_image_loss);
