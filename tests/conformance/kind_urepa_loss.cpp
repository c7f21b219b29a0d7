// urepa_loss: SimpleTuner's UrepaRegularizer over a sequence of steps (schedule state carries across them),
// with the gradients of the first step's loss.
#include "core/align/urepa_regularizer.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_urepa_loss(const Fixture& fixture) {
  const int64_t max_train_steps = std::stoll(fixture.meta_or("max_train_steps", "0"));
  const auto hidden = fixture.tensor("in.hidden");    // (K, B, C, h, w)
  const auto teacher = fixture.tensor("in.teacher");  // (K, B, N, De)
  const auto steps = fixture.tensor("in.step");
  repa::align::UrepaRegularizer regularizer(repa::align::UrepaOptions::from_json(fixture.config(), max_train_steps),
                                            hidden.size(2), {teacher.size(3)});
  {
    torch::NoGradGuard no_grad;
    for (auto& item : regularizer.projectors()->named_parameters())
      item.value().copy_(fixture.tensor("param." + item.key()));
  }

  const int64_t rows = steps.numel();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto loss = torch::empty({rows}, f64), alignment = torch::empty({rows}, f64), manifold = torch::empty({rows}, f64),
       similarity = torch::empty({rows}, f64), weight = torch::empty({rows}, f64);
  auto cutoff = torch::empty({rows}, torch::kInt64);
  const bool has_grads = fixture.has("out.grad.hidden");
  Comparison c(fixture.atol(), fixture.rtol());
  for (int64_t k = 0; k < rows; ++k) {
    auto h = hidden[k].clone().requires_grad_(k == 0 && has_grads);
    auto out = regularizer.compute(h, {teacher[k]}, steps[k].item<int64_t>());
    loss[k] = out.scalars.at("urepa_loss");
    alignment[k] = out.scalars.at("urepa_alignment_loss");
    manifold[k] = out.scalars.at("urepa_manifold_loss");
    similarity[k] = out.scalars.at("urepa_similarity");
    weight[k] = out.scalars.at("urepa_weight");
    cutoff[k] = static_cast<int64_t>(out.scalars.at("urepa_cutoff"));
    if (k == 0) c.check("out.loss[0] (tensor)", out.loss, fixture.tensor("out.loss")[0]);
    if (k == 0 && has_grads) {
      out.loss.backward();
      c.check("out.grad.hidden", h.grad(), fixture.tensor("out.grad.hidden"));
      for (const auto& item : regularizer.projectors()->named_parameters())
        c.check("out.grad." + item.key(), item.value().grad(), fixture.tensor("out.grad." + item.key()));
    }
  }
  c.check("out.loss", loss, fixture.tensor("out.loss"));
  c.check("out.alignment_loss", alignment, fixture.tensor("out.alignment_loss"));
  c.check("out.manifold_loss", manifold, fixture.tensor("out.manifold_loss"));
  c.check("out.similarity", similarity, fixture.tensor("out.similarity"));
  c.check("out.weight", weight, fixture.tensor("out.weight"));
  c.check("out.cutoff", cutoff, fixture.tensor("out.cutoff"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("urepa_loss", check_urepa_loss);
