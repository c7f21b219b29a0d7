// sit_forward: REPA's SiT (models/sit.py) in eval mode — velocity prediction and the projector outputs
// after block encoder_depth (1-based), with the fixture's weights loaded under their official names.
#include <map>
#include <string>

#include "core/base/error.h"
#include "core/models/sit.h"
#include "core/nn/state_loading.h"
#include "tests/conformance/fixture.h"

namespace {

repa::conformance::Comparison check_sit_forward(const repa::conformance::Fixture& fixture) {
  const auto& kwargs = fixture.config();
  auto config = repa::models::SiTConfig::from_repa_kwargs(kwargs);
  repa::models::SiT model(config);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : fixture.names_with_prefix("param.")) weights[name] = fixture.tensor("param." + name);
  repa::nn::load_state(*model, weights, fixture.path());
  model->eval();

  // REPA's encoder_depth counts blocks from 1; the tap is 0-based.
  const int64_t tap = kwargs.value("encoder_depth", int64_t{1}) - 1;
  torch::NoGradGuard no_grad;
  const auto out = model->forward(fixture.tensor("in.x"), fixture.tensor("in.t"), fixture.tensor("in.y"), tap);
  repa::conformance::Comparison comparison(fixture.atol(), fixture.rtol());
  comparison.check("out.x", out.prediction, fixture.tensor("out.x"));
  const auto zs = model->project(out.hidden);
  for (std::size_t i = 0; i < zs.size(); ++i) {
    const std::string name = "out.zs." + std::to_string(i);
    if (!fixture.has(name)) throw repa::InputError("fixture " + fixture.path() + " lacks " + name);
    comparison.check(name, zs[i], fixture.tensor(name));
  }
  return comparison;
}

}  // namespace

REPA_CONFORMANCE_KIND("sit_forward", check_sit_forward);
