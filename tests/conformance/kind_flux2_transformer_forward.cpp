// flux2_transformer_forward: diffusers' Flux2Transformer2DModel in eval (guidance embedding on and off) with the
// fixture's weights under diffusers' names; out.sample (packed) and SimpleTuner's REPA tap (image tokens after block
// crepa_block_index, double blocks first) as out.crepa_hidden_states.
#include <map>
#include <string>

#include "core/models/flux2_transformer.h"
#include "core/nn/state_loading.h"
#include "tests/conformance/fixture.h"

namespace {

repa::conformance::Comparison check_flux2_transformer_forward(const repa::conformance::Fixture& fixture) {
  const auto config = repa::models::Flux2TransformerConfig::from_json(fixture.config());
  repa::models::Flux2Transformer model(config);
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
  const auto out = model->forward(input("hidden_states"), input("encoder_hidden_states"), input("timestep"),
                                  input("img_ids"), input("txt_ids"), input("guidance"), tap);
  repa::conformance::Comparison comparison(fixture.atol(), fixture.rtol());
  comparison.check("out.sample", out.prediction, fixture.tensor("out.sample"));
  comparison.check("out.crepa_hidden_states", out.tapped, fixture.tensor("out.crepa_hidden_states"));
  return comparison;
}

}  // namespace

REPA_CONFORMANCE_KIND("flux2_transformer_forward", check_flux2_transformer_forward);
