// crepa_image_loss: SimpleTuner's CrepaRegularizer in image mode over a sequence of steps (the schedule's
// similarity EMA and cut-off carry across them), with the gradients of the first step's loss.
#include <cmath>
#include <limits>

#include "core/align/repa_regularizer.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

void load_projector(torch::nn::Module& module, const Fixture& fixture) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) item.value().copy_(fixture.tensor("param." + item.key()));
}

Comparison check_crepa_image_loss(const Fixture& fixture) {
  const int64_t max_train_steps = std::stoll(fixture.meta_or("max_train_steps", "0"));
  const auto hidden = fixture.tensor("in.hidden");    // (K, B, S, Dh)
  const auto teacher = fixture.tensor("in.teacher");  // (K, B, N, De)
  const auto steps = fixture.tensor("in.step");
  repa::align::RepaRegularizer regularizer(repa::align::RepaOptions::from_json(fixture.config(), max_train_steps),
                                           hidden.size(3), {teacher.size(3)});
  load_projector(*regularizer.projectors(), fixture);

  const int64_t rows = steps.numel();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto loss = torch::empty({rows}, f64), weight = torch::empty({rows}, f64), score = torch::empty({rows}, f64),
       self = torch::empty({rows}, f64), ema = torch::empty({rows}, f64);
  auto cutoff = torch::empty({rows}, torch::kInt64);
  const bool has_grads = fixture.has("out.grad.hidden");
  Comparison c(fixture.atol(), fixture.rtol());
  for (int64_t k = 0; k < rows; ++k) {
    auto h = hidden[k].clone().requires_grad_(k == 0 && has_grads);
    auto out = regularizer.compute(h, {teacher[k]}, steps[k].item<int64_t>());
    loss[k] = out.scalars.at("crepa_loss");
    weight[k] = out.scalars.at("crepa_weight");
    cutoff[k] = static_cast<int64_t>(out.scalars.at("crepa_cutoff"));
    score[k] = out.scalars.at("crepa_alignment_score");
    self[k] = out.scalars.at("crepa_similarity_self");
    ema[k] = out.scalars.count("crepa_alignment_score_ema") ? out.scalars.at("crepa_alignment_score_ema")
                                                            : std::numeric_limits<double>::quiet_NaN();
    if (k == 0) c.check("out.loss[0] (tensor)", out.loss, fixture.tensor("out.loss")[0]);
    if (k == 0 && has_grads) {
      out.loss.backward();
      c.check("out.grad.hidden", h.grad(), fixture.tensor("out.grad.hidden"));
      for (const auto& item : regularizer.projectors()->named_parameters())
        c.check("out.grad." + item.key(), item.value().grad(), fixture.tensor("out.grad." + item.key()));
    }
  }
  c.check("out.loss", loss, fixture.tensor("out.loss"));
  c.check("out.weight", weight, fixture.tensor("out.weight"));
  c.check("out.cutoff", cutoff, fixture.tensor("out.cutoff"));
  c.check("out.alignment_score", score, fixture.tensor("out.alignment_score"));
  c.check("out.similarity_self", self, fixture.tensor("out.similarity_self"));
  c.check("out.similarity_ema", ema, fixture.tensor("out.similarity_ema"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("crepa_image_loss", check_crepa_image_loss);
