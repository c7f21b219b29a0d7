// AutoencoderKL: a diffusers VAE folder loads and reproduces the reference encode/decode; the posterior's
// log-variance is clamped to [-30, 20]; old attention names (query/key/value/proj_attn) load; bad configs
// name the key.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/autoencoder_kl.h"
#include "tests/test_support.h"

using namespace repa::models;

namespace {

const repa::io::SafetensorsFile& vae_fixture() {
  static const auto f = repa::io::SafetensorsFile::open(
      repa::test::fixture_path("conformance/autoencoder_kl_1_3.safetensors"));
  return f;
}

// Writes the fixture as a diffusers folder; `rename` maps new weight names to old ones.
void write_folder(const repa::test::ScratchDir& dir, const std::function<std::string(std::string)>& rename) {
  const auto& f = vae_fixture();
  std::ofstream(dir.file("config.json")) << *f.meta("config");
  repa::io::NamedTensors params;
  for (const auto& name : f.names()) {
    if (name.rfind("param.", 0) == 0) params.emplace_back(rename(name.substr(6)), f.tensor(name));
  }
  repa::io::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), params);
}

std::string legacy_name(std::string name) {
  for (const auto& [now, before] : std::vector<std::pair<std::string, std::string>>{
           {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}}) {
    const auto at = name.find(now);
    if (at != std::string::npos) return name.substr(0, at) + before + name.substr(at + now.size());
  }
  return name;
}

}  // namespace

TEST_CASE("a VAE folder loads (current and pre-0.14 attention names) and matches the reference") {
  torch::NoGradGuard no_grad;
  const auto& f = vae_fixture();
  for (bool legacy : {false, true}) {
    CAPTURE(legacy);
    repa::test::ScratchDir dir("vae");
    write_folder(dir, legacy ? legacy_name : [](std::string n) { return n; });
    auto vae = load_autoencoder_kl(dir.path().string());
    vae->eval();
    const auto posterior = vae->encode(f.tensor("in.pixels"));
    CHECK(torch::allclose(posterior.mean, f.tensor("out.mean"), 1e-4, 1e-4));
    CHECK(torch::allclose(posterior.logvar, f.tensor("out.logvar"), 1e-4, 1e-4));
    CHECK(torch::allclose(vae->decode(f.tensor("in.latents")), f.tensor("out.decoded"), 1e-4, 1e-4));
    CHECK(vae->downsampling_factor() == 2);
    CHECK(vae->config.scaling_factor == doctest::Approx(0.18215));
  }
}

TEST_CASE("the posterior log-variance is clamped to [-30, 20]") {
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(AutoencoderKLConfig::from_json(nlohmann::json::parse(*vae_fixture().meta("config"))));
  vae->eval();
  auto bias = vae->quant_conv->bias;
  bias.narrow(0, 4, 4).fill_(1000.0);
  auto high = vae->encode(torch::rand({1, 3, 16, 16}) * 2 - 1);
  CHECK(high.logvar.max().item<double>() == 20.0);
  CHECK(high.logvar.min().item<double>() == 20.0);
  bias.narrow(0, 4, 4).fill_(-1000.0);
  auto low = vae->encode(torch::rand({1, 3, 16, 16}) * 2 - 1);
  CHECK(low.logvar.max().item<double>() == -30.0);
  CHECK(torch::allclose(low.std(), torch::full_like(low.std(), std::exp(-15.0))));
}

TEST_CASE("VAE config errors name the key; a folder without weights is named") {
  auto json = nlohmann::json::parse(*vae_fixture().meta("config"));
  json["up_block_types"][0] = "UpBlock2D";
  try {
    AutoencoderKLConfig::from_json(json);
    FAIL("expected an error");
  } catch (const repa::InputError& e) {
    CHECK(std::string(e.what()).find("'up_block_types[0]'") != std::string::npos);
  }
  repa::test::ScratchDir empty("vae-empty");
  std::ofstream(empty.file("config.json")) << *vae_fixture().meta("config");
  try {
    load_autoencoder_kl(empty.path().string());
    FAIL("expected an error");
  } catch (const repa::InputError& e) {
    CHECK(std::string(e.what()).find(empty.path().string()) != std::string::npos);
  }
}
