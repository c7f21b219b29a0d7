// The part of the crepa_image_loss and urepa_loss checks that is the same: load the projector weights, run
// the regularizer over the fixture's rows (in.hidden, in.teacher, in.step: the schedule state carries across
// rows), compare each logged scalar per row, the first row's loss tensor and, when present, its gradients.
#pragma once
#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "tests/conformance/fixture.h"

namespace repa::conformance {

struct ScalarColumn {
  std::string scalar;     // the name the regularizer logs, e.g. "crepa_weight"
  std::string output;     // the fixture's tensor, e.g. "out.weight"
  bool integer = false;   // compared as int64 (cut-off flags)
  bool optional = false;  // NaN in rows where the regularizer does not log it yet
};

template <class Regularizer>
Comparison check_regularizer_rows(const Fixture& fixture, Regularizer& regularizer,
                                  const std::vector<ScalarColumn>& columns) {
  {
    torch::NoGradGuard no_grad;
    for (auto& item : regularizer.projectors()->named_parameters())
      item.value().copy_(fixture.tensor("param." + item.key()));
  }
  const auto hidden = fixture.tensor("in.hidden");
  const auto teacher = fixture.tensor("in.teacher");  // (K, B, N, De)
  const auto steps = fixture.tensor("in.step");
  const int64_t rows = steps.numel();
  std::vector<torch::Tensor> values;
  for (const auto& column : columns)
    values.push_back(torch::empty({rows}, column.integer ? torch::kInt64 : torch::kFloat64));
  const bool has_grads = fixture.has("out.grad.hidden");
  Comparison c(fixture.atol(), fixture.rtol());
  for (int64_t k = 0; k < rows; ++k) {
    auto h = hidden[k].clone().requires_grad_(k == 0 && has_grads);
    auto out = regularizer.compute(h, {teacher[k]}, steps[k].item<int64_t>());
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const auto& column = columns[i];
      const bool logged = out.scalars.count(column.scalar) != 0;
      if (!logged && !column.optional) throw repa::Error("the regularizer did not log '" + column.scalar + "'");
      const double value = logged ? out.scalars.at(column.scalar) : std::numeric_limits<double>::quiet_NaN();
      values[i][k] = column.integer ? torch::scalar_tensor(static_cast<int64_t>(value)) : torch::scalar_tensor(value);
    }
    if (k == 0) c.check("out.loss[0] (tensor)", out.loss, fixture.tensor("out.loss")[0]);
    if (k == 0 && has_grads) {
      out.loss.backward();
      c.check("out.grad.hidden", h.grad(), fixture.tensor("out.grad.hidden"));
      for (const auto& item : regularizer.projectors()->named_parameters())
        c.check("out.grad." + item.key(), item.value().grad(), fixture.tensor("out.grad." + item.key()));
    }
  }
  for (std::size_t i = 0; i < columns.size(); ++i)
    c.check(columns[i].output, values[i], fixture.tensor(columns[i].output));
  return c;
}

}  // namespace repa::conformance
