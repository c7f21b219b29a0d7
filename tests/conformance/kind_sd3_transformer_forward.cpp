// sd3_transformer_forward: diffusers' SD3Transformer2DModel in eval (SD3.0 and SD3.5 shapes) with the fixture's
// weights under diffusers' names; out.sample and SimpleTuner's REPA tap (the image stream after joint block
// crepa_block_index) as out.crepa_hidden_states.
#include <map>
#include <string>

#include "core/models/sd3_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/conformance/fixture.h"

namespace {

repa::conformance::Comparison check_sd3_transformer_forward(const repa::conformance::Fixture& fixture) {
  const auto config = repa::models::SD3TransformerConfig::from_json(fixture.config());
  repa::models::SD3Transformer model(config);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : fixture.names_with_prefix("param.")) weights[name] = fixture.tensor("param." + name);
  repa::nn::load_state(*model, weights, fixture.path());
  model->eval();

  const auto inputs = nlohmann::json::parse(fixture.meta("inputs"));
  const auto input = [&](const std::string& key) {
    return inputs.contains(key) ? fixture.tensor(inputs.at(key).get<std::string>()) : torch::Tensor();
  };
  const int64_t tap = std::stoll(fixture.meta("crepa_block_index"));
  torch::NoGradGuard no_grad;
  const auto out = model->forward(input("hidden_states"), input("encoder_hidden_states"), input("pooled_projections"),
                                  input("timestep"), tap);
  repa::conformance::Comparison comparison(fixture.atol(), fixture.rtol());
  comparison.check("out.sample", out.prediction, fixture.tensor("out.sample"));
  comparison.check("out.crepa_hidden_states", out.tapped, fixture.tensor("out.crepa_hidden_states"));
  return comparison;
}

}  // namespace

REPA_CONFORMANCE_KIND("sd3_transformer_forward", check_sd3_transformer_forward);
