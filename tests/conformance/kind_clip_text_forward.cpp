// clip_text_forward: CLIPTextModel / CLIPTextModelWithProjection on padded, full-length, empty and raw ids,
// with and without a padding mask; every hidden state, last_hidden_state, the pooled eos row, text_embeds.
#include <string>

#include "core/text/clip_text_model.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_clip_text_forward(const Fixture& fixture) {
  auto config = repa::text::ClipTextConfig::from_json(fixture.config());
  config.with_projection = fixture.meta("class") == "CLIPTextModelWithProjection";
  std::vector<std::string> names;
  for (const auto& name : fixture.names_with_prefix("param.")) names.push_back(name);
  auto model = repa::text::load_clip_text_model(
      config, names, [&](const std::string& name) { return fixture.tensor("param." + name); }, fixture.path());

  Comparison result(fixture.atol(), fixture.rtol());
  // The pooling rule the fixture names (when it names one) must be the one the config's eos_token_id selects.
  const auto rule = fixture.meta_or("pooling_rule", "");
  if (!rule.empty())
    result.check("pooling_rule", torch::tensor({static_cast<int64_t>(config.eos_token_id == 2)}),
                 torch::tensor({static_cast<int64_t>(rule == "argmax")}));

  torch::NoGradGuard no_grad;
  const int inputs = std::stoi(fixture.meta_or("inputs", "1"));
  for (int j = 0; j < inputs; ++j) {
    const auto suffix = "." + std::to_string(j);
    const auto mask_name = "in.attention_mask" + suffix;
    const auto out = model->forward(fixture.tensor("in.input_ids" + suffix),
                                    fixture.has(mask_name) ? fixture.tensor(mask_name) : torch::Tensor());
    for (std::size_t k = 0; k < out.hidden_states.size(); ++k) {
      const auto name = "out.hidden_states" + suffix + "." + std::to_string(k);
      result.check(name, out.hidden_states[k], fixture.tensor(name));
    }
    if (fixture.has("out.hidden_states" + suffix + "." + std::to_string(out.hidden_states.size())))
      result.check("hidden_states count" + suffix, torch::tensor({0}), torch::tensor({1}));
    result.check("out.last_hidden_state" + suffix, out.last_hidden_state,
                 fixture.tensor("out.last_hidden_state" + suffix));
    result.check("out.pooler_output" + suffix, out.pooler_output, fixture.tensor("out.pooler_output" + suffix));
    if (fixture.has("out.text_embeds" + suffix))
      result.check("out.text_embeds" + suffix, out.text_embeds, fixture.tensor("out.text_embeds" + suffix));
  }
  return result;
}

}  // namespace

REPA_CONFORMANCE_KIND("clip_text_forward", check_clip_text_forward);
