// UNet2DModel (class-conditional, self-attention blocks): names equal to the reference's weights, class
// labels required exactly when the config has class embeddings, checkpointed training gradients.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/unet_2d.h"
#include "tests/test_support.h"

using namespace repa::models;

namespace {

const repa::io::SafetensorsFile& classcond_fixture() {
  static const auto f = repa::io::SafetensorsFile::open(
      repa::test::fixture_path("conformance/unet2d_forward_classcond_1_2.safetensors"));
  return f;
}

UNet2DConfig classcond_config() {
  return UNet2DConfig::from_json(nlohmann::json::parse(*classcond_fixture().meta("config")));
}

}  // namespace

TEST_CASE("UNet2DModel parameter names and shapes are the reference checkpoint's") {
  UNet2DModel model(classcond_config());
  std::set<std::string> want;
  const auto& f = classcond_fixture();
  for (const auto& name : f.names()) {
    if (name.rfind("param.", 0) == 0) want.insert(name.substr(6));
  }
  std::set<std::string> got;
  for (const auto& p : model->named_parameters()) {
    got.insert(p.key());
    CAPTURE(p.key());
    REQUIRE(want.count(p.key()) == 1);
    CHECK((p.value().sizes() == torch::IntArrayRef(f.info("param." + p.key()).shape)));
  }
  CHECK(got == want);
}

TEST_CASE("class labels are required with class embeddings and refused without") {
  torch::NoGradGuard no_grad;
  UNet2DModel conditional(classcond_config());
  const auto x = torch::randn({2, 4, 8, 8});
  const auto t = torch::tensor({1, 500});
  CHECK_THROWS_AS(conditional->forward(x, t), repa::InputError);
  const auto out = conditional->forward(x, t, torch::tensor({0, 10}));
  CHECK((out.sample.sizes() == x.sizes()));
  CHECK((out.mid_block.sizes() == torch::IntArrayRef{2, 64, 4, 4}));
  // Different labels change the prediction: the class embedding reaches every ResNet block.
  CHECK(!torch::allclose(out.sample, conditional->forward(x, t, torch::tensor({3, 10})).sample));

  auto json = nlohmann::json::parse(*classcond_fixture().meta("config"));
  json.erase("num_class_embeds");
  UNet2DModel unconditional(UNet2DConfig::from_json(json));
  CHECK_THROWS_AS(unconditional->forward(x, t, torch::tensor({0, 1})), repa::InputError);
  CHECK((unconditional->forward(x, torch::tensor(7)).sample.sizes() == x.sizes()));
}

TEST_CASE("UNet2DModel with gradient checkpointing trains to the same gradients") {
  torch::manual_seed(1);
  UNet2DModel plain(classcond_config()), checkpointed(classcond_config());
  {
    torch::NoGradGuard no_grad;
    auto src = plain->named_parameters();
    for (auto& p : checkpointed->named_parameters()) p.value().copy_(src[p.key()]);
  }
  UNetMemoryOptions memory;
  memory.gradient_checkpointing = true;
  checkpointed->set_memory_options(memory);
  const auto x = torch::randn({2, 4, 8, 8}).requires_grad_(true);
  auto loss_of = [&](UNet2DModel& m) {
    m->train();
    auto out = m->forward(x, torch::tensor({3, 900}), torch::tensor({1, 2}));
    return (out.sample - x.detach()).square().mean() + 0.1 * out.mid_block.square().mean();
  };
  auto l1 = loss_of(plain);
  l1.backward();
  const auto x_grad = x.grad().clone();
  x.mutable_grad().zero_();
  auto l2 = loss_of(checkpointed);
  l2.backward();
  CHECK(l1.item<double>() == doctest::Approx(l2.item<double>()).epsilon(1e-6));
  CHECK(torch::allclose(x.grad(), x_grad, 1e-5, 1e-7));
  auto want = plain->named_parameters();
  for (const auto& p : checkpointed->named_parameters()) {
    CAPTURE(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(torch::allclose(p.value().grad(), want[p.key()].grad(), 1e-5, 1e-7));
  }
}

TEST_CASE("UNet2DModel config errors name the key") {
  auto json = nlohmann::json::parse(*classcond_fixture().meta("config"));
  json["down_block_types"][1] = "AttnSkipDownBlock2D";
  try {
    UNet2DConfig::from_json(json);
    FAIL("expected an error");
  } catch (const repa::InputError& e) {
    CHECK(std::string(e.what()).find("'down_block_types[1]'") != std::string::npos);
  }
  json = nlohmann::json::parse(*classcond_fixture().meta("config"));
  json["attention_head_dim"] = 12;  // 64 channels are not divisible into heads of 12
  CHECK_THROWS_AS(UNet2DModel(UNet2DConfig::from_json(json)), repa::InputError);
}
