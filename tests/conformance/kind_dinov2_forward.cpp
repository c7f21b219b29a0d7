// dinov2_forward: DinoVisionTransformer.forward_features on normalised pixels, weights in Hugging Face or
// torch.hub naming, at the native size and at one that interpolates the positional table.
#include <string>

#include "core/encoders/dinov2_weights.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_dinov2_forward(const Fixture& fixture) {
  const auto& config = fixture.config();
  repa::encoders::Dinov2StateDict state;
  state.source = fixture.path();
  for (const auto& name : fixture.names_with_prefix("param.")) state.tensors[name] = fixture.tensor("param." + name);

  repa::encoders::Dinov2LoadOptions options;
  options.num_heads = config.at("num_heads").get<int64_t>();
  options.interpolate_offset = config.at("interpolate_offset").get<double>();
  options.interpolate_antialias = config.at("interpolate_antialias").get<bool>();
  auto model = repa::encoders::load_dinov2(state, options);

  // What the loader inferred from the tensors must agree with the reference's own configuration.
  const auto& c = model->config();
  Comparison result(fixture.atol(), fixture.rtol());
  const auto expect_same = [&](const std::string& what, int64_t got, int64_t want) {
    result.check("config." + what, torch::tensor({got}), torch::tensor({want}));
  };
  expect_same("embed_dim", c.embed_dim, config.at("embed_dim").get<int64_t>());
  expect_same("depth", c.depth, config.at("depth").get<int64_t>());
  expect_same("num_register_tokens", c.num_register_tokens, config.at("num_register_tokens").get<int64_t>());
  expect_same("ffn_hidden", c.ffn_hidden, config.at("ffn_hidden").get<int64_t>());
  expect_same("swiglu", c.ffn == repa::encoders::FeedForwardKind::SwiGlu,
              config.at("ffn_layer").get<std::string>().rfind("swiglu", 0) == 0);
  expect_same("position_grid", c.position_grid * c.patch_size, config.at("img_size").get<int64_t>());

  const int inputs = std::stoi(fixture.meta_or("inputs", "1"));
  torch::NoGradGuard no_grad;
  for (int j = 0; j < inputs; ++j) {
    const auto suffix = "." + std::to_string(j);
    const auto features = model->forward(fixture.tensor("in.pixels" + suffix));
    result.check("out.x_norm_clstoken" + suffix, features.cls_token, fixture.tensor("out.x_norm_clstoken" + suffix));
    result.check("out.x_norm_patchtokens" + suffix, features.patch_tokens,
                 fixture.tensor("out.x_norm_patchtokens" + suffix));
    if (fixture.has("out.x_norm_regtokens" + suffix))
      result.check("out.x_norm_regtokens" + suffix, features.register_tokens,
                   fixture.tensor("out.x_norm_regtokens" + suffix));
  }
  return result;
}

}  // namespace

REPA_CONFORMANCE_KIND("dinov2_forward", check_dinov2_forward);
