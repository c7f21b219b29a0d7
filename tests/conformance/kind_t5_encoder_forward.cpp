// t5_encoder_forward: T5EncoderModel v1.1 with a padding mask (PixArt) or without (SD3, FLUX); every hidden
// state (the last one final-normed) and last_hidden_state.
#include <string>

#include "core/text/t5_encoder.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_t5_encoder_forward(const Fixture& fixture) {
  const auto config = repa::text::T5EncoderConfig::from_json(fixture.config());
  std::vector<std::string> names;
  for (const auto& name : fixture.names_with_prefix("param.")) names.push_back(name);
  auto model = repa::text::load_t5_encoder(
      config, names, [&](const std::string& name) { return fixture.tensor("param." + name); }, fixture.path());

  Comparison result(fixture.atol(), fixture.rtol());
  const bool masked = fixture.meta_or("flavour", "unmasked") == "masked";
  result.check("flavour masked has in.attention_mask", torch::tensor({static_cast<int64_t>(masked)}),
               torch::tensor({static_cast<int64_t>(fixture.has("in.attention_mask"))}));
  torch::NoGradGuard no_grad;
  const auto out =
      model->forward(fixture.tensor("in.input_ids"), masked ? fixture.tensor("in.attention_mask") : torch::Tensor());
  for (std::size_t k = 0; k < out.hidden_states.size(); ++k) {
    const auto name = "out.hidden_states." + std::to_string(k);
    result.check(name, out.hidden_states[k], fixture.tensor(name));
  }
  if (fixture.has("out.hidden_states." + std::to_string(out.hidden_states.size())))
    result.check("hidden_states count", torch::tensor({0}), torch::tensor({1}));
  result.check("out.last_hidden_state", out.last_hidden_state, fixture.tensor("out.last_hidden_state"));
  return result;
}

}  // namespace

REPA_CONFORMANCE_KIND("t5_encoder_forward", check_t5_encoder_forward);
