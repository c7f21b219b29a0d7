// unet2d_forward: diffusers UNet2DConditionModel / UNet2DModel forward in eval mode, the prediction and the
// mid-block output U-REPA aligns, with the fixture's diffusers-named weights.
#include <torch/torch.h>

#include "core/models/diffusers_layers.h"
#include "core/models/diffusers_weights.h"
#include "core/models/unet_2d.h"
#include "core/models/unet_2d_condition.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;
namespace diffusers = repa::models::diffusers;

void load_params(torch::nn::Module& model, const Fixture& fixture) {
  diffusers::load_named_tensors(
      model, fixture.names_with_prefix("param."),
      [&](const std::string& name) { return fixture.tensor("param." + name); }, fixture.path());
}

torch::Tensor optional_input(const Fixture& fixture, const std::string& name) {
  return fixture.has(name) ? fixture.tensor(name) : torch::Tensor();
}

Comparison check_unet2d_forward(const Fixture& fixture) {
  torch::NoGradGuard no_grad;
  diffusers::ParameterInitScope no_init(diffusers::ParameterInit::Uninitialized);
  const auto& config = fixture.config();
  const bool conditional = fixture.meta_or("class", config.contains("cross_attention_dim")
                                                        ? "UNet2DConditionModel"
                                                        : "UNet2DModel") == "UNet2DConditionModel";
  const auto sample = fixture.tensor("in.sample");
  const auto timestep = fixture.tensor("in.timestep");
  repa::models::UNetOutput out;
  if (conditional) {
    repa::models::UNet2DConditionModel model(repa::models::UNet2DConditionConfig::from_json(config));
    load_params(*model, fixture);
    model->eval();
    repa::models::UNetConditioning cond;
    cond.class_labels = optional_input(fixture, "in.class_labels");
    cond.text_embeds = optional_input(fixture, "in.text_embeds");
    cond.time_ids = optional_input(fixture, "in.time_ids");
    out = model->forward(sample, timestep, fixture.tensor("in.encoder_hidden_states"), cond);
  } else {
    repa::models::UNet2DModel model(repa::models::UNet2DConfig::from_json(config));
    load_params(*model, fixture);
    model->eval();
    out = model->forward(sample, timestep, optional_input(fixture, "in.class_labels"));
  }
  Comparison c(fixture.atol(), fixture.rtol());
  c.check("out.sample", out.sample, fixture.tensor("out.sample"));
  c.check("out.mid_block", out.mid_block, fixture.tensor("out.mid_block"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("unet2d_forward", check_unet2d_forward);
