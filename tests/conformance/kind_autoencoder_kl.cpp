// autoencoder_kl: diffusers AutoencoderKL, the posterior mean/log-variance of an encode and a decode, with
// the fixture's diffusers-named weights (the SD VAE checkpoints' names).
#include <torch/torch.h>

#include "core/models/autoencoder_kl.h"
#include "core/models/diffusers_layers.h"
#include "core/models/diffusers_weights.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;
namespace diffusers = repa::models::diffusers;

Comparison check_autoencoder_kl(const Fixture& fixture) {
  torch::NoGradGuard no_grad;
  diffusers::ParameterInitScope no_init(diffusers::ParameterInit::Uninitialized);
  repa::models::AutoencoderKL vae(repa::models::AutoencoderKLConfig::from_json(fixture.config()));
  diffusers::load_named_tensors(
      *vae, fixture.names_with_prefix("param."),
      [&](const std::string& name) { return fixture.tensor("param." + name); }, fixture.path());
  vae->eval();
  const auto posterior = vae->encode(fixture.tensor("in.pixels"));
  const auto decoded = vae->decode(fixture.tensor("in.latents"));
  Comparison c(fixture.atol(), fixture.rtol());
  c.check("out.mean", posterior.mean, fixture.tensor("out.mean"));
  c.check("out.logvar", posterior.logvar, fixture.tensor("out.logvar"));
  c.check("out.decoded", decoded, fixture.tensor("out.decoded"));
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("autoencoder_kl", check_autoencoder_kl);
