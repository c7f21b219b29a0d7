// urepa_loss: SimpleTuner's UrepaRegularizer over a sequence of steps (schedule state carries across them),
// with the gradients of the first step's loss.
#include "core/align/urepa_regularizer.h"
#include "tests/conformance/regularizer_rows.h"

namespace {

using namespace repa::conformance;

Comparison check_urepa_loss(const Fixture& fixture) {
  const int64_t max_train_steps = std::stoll(fixture.meta_or("max_train_steps", "0"));
  const auto hidden = fixture.tensor("in.hidden");    // (K, B, C, h, w)
  const auto teacher = fixture.tensor("in.teacher");  // (K, B, N, De)
  repa::align::UrepaRegularizer regularizer(repa::align::UrepaOptions::from_json(fixture.config(), max_train_steps),
                                            hidden.size(2), {teacher.size(3)});
  return check_regularizer_rows(fixture, regularizer,
                                {{"urepa_loss", "out.loss"},
                                 {"urepa_alignment_loss", "out.alignment_loss"},
                                 {"urepa_manifold_loss", "out.manifold_loss"},
                                 {"urepa_similarity", "out.similarity"},
                                 {"urepa_weight", "out.weight"},
                                 {"urepa_cutoff", "out.cutoff", true}});
}

}  // namespace

REPA_CONFORMANCE_KIND("urepa_loss", check_urepa_loss);
