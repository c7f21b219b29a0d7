// hidream_transformer_forward: diffusers HiDreamImageTransformer2DModel forward in eval mode with the fixture's
// diffusers-named weights; out.sample and SimpleTuner's REPA tap (image tokens after a double-stream block).
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/models/diffusers_layers.h"
#include "core/models/dit_weights.h"
#include "core/models/hidream_transformer.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

repa::conformance::Comparison check_hidream_transformer_forward(const Fixture& fixture) {
  torch::NoGradGuard no_grad;
  repa::models::diffusers::ParameterInitScope no_init(repa::models::diffusers::ParameterInit::Uninitialized);
  repa::models::HiDreamTransformer model(repa::models::HiDreamTransformerConfig::from_diffusers(fixture.config()));
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : fixture.names_with_prefix("param.")) weights[name] = fixture.tensor("param." + name);
  repa::models::dit::load_weights(*model, weights, fixture.path());
  model->eval();

  // The forward keywords the fixture names, each read from its in.* tensor.
  repa::models::HiDreamInputs in;
  const std::map<std::string, torch::Tensor*> slots = {
      {"hidden_states", &in.hidden_states},
      {"timesteps", &in.timesteps},
      {"encoder_hidden_states_t5", &in.encoder_hidden_states_t5},
      {"encoder_hidden_states_llama3", &in.encoder_hidden_states_llama3},
      {"pooled_embeds", &in.pooled_embeds}};
  const auto inputs = nlohmann::json::parse(fixture.meta("inputs"));
  for (const auto& [keyword, tensor_name] : inputs.items()) {
    const auto slot = slots.find(keyword);
    if (slot == slots.end())
      throw repa::InputError("fixture " + fixture.path() + ": unknown HiDream forward input '" + keyword + "'");
    *slot->second = fixture.tensor(tensor_name.get<std::string>());
  }
  const int64_t tap = std::stoll(fixture.meta("crepa_block_index"));
  const auto out = model->forward(in, tap);
  Comparison c(fixture.atol(), fixture.rtol());
  c.check("out.sample", out.prediction, fixture.tensor("out.sample"));
  // At a single-stream tap SimpleTuner stores text tokens and this model the image (hidream_transformer.h): the
  // output is still compared, the tap cannot be.
  if (!model->simpletuner_tap_difference(tap).empty()) {
    if (!c.passed()) return c;
    throw repa::conformance::PendingFixture(
        "out.sample matches; the tap is a single-stream block, where SimpleTuner "
        "stores text tokens and this model taps the image");
  }
  c.check("out.crepa_hidden_states", out.tapped, fixture.tensor("out.crepa_hidden_states"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("hidream_transformer_forward", check_hidream_transformer_forward);
