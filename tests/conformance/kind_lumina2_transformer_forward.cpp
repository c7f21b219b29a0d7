// lumina2_transformer_forward: diffusers Lumina2Transformer2DModel forward in eval mode with the fixture's
// diffusers-named weights; out.sample and SimpleTuner's REPA tap (the whole joint sequence after layers[i]).
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/models/diffusers_layers.h"
#include "core/models/dit_weights.h"
#include "core/models/lumina2_transformer.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

repa::conformance::Comparison check_lumina2_transformer_forward(const Fixture& fixture) {
  torch::NoGradGuard no_grad;
  repa::models::diffusers::ParameterInitScope no_init(repa::models::diffusers::ParameterInit::Uninitialized);
  repa::models::Lumina2Transformer model(repa::models::Lumina2TransformerConfig::from_diffusers(fixture.config()));
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : fixture.names_with_prefix("param.")) weights[name] = fixture.tensor("param." + name);
  repa::models::dit::load_weights(*model, weights, fixture.path());
  model->eval();

  // The forward keywords the fixture names, each read from its in.* tensor.
  repa::models::Lumina2Inputs in;
  const std::map<std::string, torch::Tensor*> slots = {{"hidden_states", &in.hidden_states},
                                                       {"timestep", &in.timestep},
                                                       {"encoder_hidden_states", &in.encoder_hidden_states},
                                                       {"encoder_attention_mask", &in.encoder_attention_mask}};
  const auto inputs = nlohmann::json::parse(fixture.meta("inputs"));
  for (const auto& [keyword, tensor_name] : inputs.items()) {
    const auto slot = slots.find(keyword);
    if (slot == slots.end())
      throw repa::InputError("fixture " + fixture.path() + ": unknown Lumina2 forward input '" + keyword + "'");
    *slot->second = fixture.tensor(tensor_name.get<std::string>());
  }
  const int64_t tap = std::stoll(fixture.meta("crepa_block_index"));
  const auto out = model->forward(in, tap);
  Comparison c(fixture.atol(), fixture.rtol());
  c.check("out.sample", out.prediction, fixture.tensor("out.sample"));
  c.check("out.crepa_hidden_states", out.tapped, fixture.tensor("out.crepa_hidden_states"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("lumina2_transformer_forward", check_lumina2_transformer_forward);
