// Teachers: the named DINOv2 (random init for demos, cached weights), the REPA recipe's resampled table,
// TorchScript modules returning tokens or a dict, and the config keys that choose them.
#include <doctest/doctest.h>

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/error.h"
#include "core/encoders/dinov2_weights.h"
#include "core/encoders/teacher.h"
#include "core/encoders/weight_location.h"
#include "tests/test_support.h"

using namespace repa::encoders;

TEST_CASE("options from a run config: SimpleTuner keys and the studio object") {
  nlohmann::json config = {{"crepa_model", nullptr}, {"crepa_encoder", "dinov2_s"}, {"crepa_encoder_image_size", 224},
                           {"resolution", 512},      {"seed", 9},
                           {"studio", {{"encoder_weights", "/w.safetensors"}, {"encoder_random_init", true},
                                       {"encoder_preprocessing", "repa"}, {"device", "cpu"}}}};
  auto o = TeacherOptions::from_config(config);
  CHECK(o.encoder == "dinov2_s");
  CHECK(o.image_size == 224);
  CHECK(o.resolution == 512);
  CHECK(o.seed == 9);
  CHECK(o.weights == "/w.safetensors");
  CHECK(o.random_init);
  CHECK(o.preprocessing == Preprocessing::Repa);
  CHECK(o.device.is_cpu());
  config["crepa_model"] = "dinov2_vitb14_reg";
  config["crepa_encoder_image_size"] = nullptr;
  o = TeacherOptions::from_config(config);
  CHECK(o.encoder == "dinov2_vitb14_reg");
  CHECK(o.image_size == 518);
  config["studio"]["encoder_preprocessing"] = "timm";
  CHECK_THROWS_WITH_AS(TeacherOptions::from_config(config), doctest::Contains("\"timm\""), repa::InputError);
}

TEST_CASE("a seeded random ViT-S/14 teacher (demo) gives patch and class tokens") {
  TeacherOptions o;
  o.encoder = "dinov2_s";
  o.random_init = true;
  o.seed = 11;
  o.image_size = 56;
  auto teacher = make_teacher(o);
  auto again = make_teacher(o);
  CHECK(teacher->token_dim() == 384);
  CHECK(teacher->describe().find("dinov2_vits14") != std::string::npos);
  auto images = torch::rand({2, 3, 64, 48});
  const auto tokens = teacher->encode(images);
  CHECK((tokens.patch_tokens.sizes() == torch::IntArrayRef{2, 16, 384}));
  CHECK((tokens.cls_token.sizes() == torch::IntArrayRef{2, 384}));
  CHECK_FALSE(tokens.patch_tokens.requires_grad());
  CHECK(torch::equal(tokens.patch_tokens, again->encode(images).patch_tokens));
  // The cache identity follows the seed and the recipe, nothing else.
  CHECK(teacher->identity() == again->identity());
  CHECK(teacher->identity() == "dinov2_vits14|random:11|simpletuner@56");
  auto other = o;
  other.seed = 12;
  CHECK(make_teacher(other)->identity() != teacher->identity());
  // The final LayerNorm (weight 1, bias 0 at init) leaves each token with mean 0.
  CHECK(tokens.patch_tokens.mean(-1).abs().max().item<double>() < 1e-4);
}

TEST_CASE("the REPA recipe resamples the table to 16 per 256 px once") {
  TeacherOptions o;
  o.encoder = "dinov2_vits14";
  o.random_init = true;
  o.preprocessing = Preprocessing::Repa;
  o.resolution = 256;
  auto teacher = make_teacher(o);
  auto* dino = dynamic_cast<Dinov2Teacher*>(teacher.get());
  REQUIRE(dino != nullptr);
  CHECK((dino->model()->pos_embed.sizes() == torch::IntArrayRef{1, 257, 384}));
  const auto tokens = teacher->encode(torch::rand({1, 3, 256, 256}));
  CHECK((tokens.patch_tokens.sizes() == torch::IntArrayRef{1, 256, 384}));
}

TEST_CASE("named weights come from the cache; a missing file names the fetch command") {
  repa::test::ScratchDir dir("repa-teacher");
  ::setenv("XDG_CACHE_HOME", dir.path().c_str(), 1);
  TeacherOptions o;
  o.encoder = "dino_v2_s";
  o.image_size = 28;
  CHECK_THROWS_WITH_AS(make_teacher(o), doctest::Contains("repa-train fetch dinov2_vits14"), repa::InputError);

  // A file of the wrong size for the name is a mismatch naming the tensor.
  Dinov2Config small;
  small.embed_dim = 32, small.depth = 1, small.num_heads = 1, small.position_grid = 2, small.ffn_hidden = 64;
  auto wrong = random_dinov2(small, 1);
  const auto cached = cached_weights_path(find_encoder("dinov2_vits14"));
  std::filesystem::create_directories(std::filesystem::path(cached).parent_path());
  save_dinov2(cached, wrong, Dinov2Naming::HuggingFace);
  CHECK_THROWS_WITH_AS(make_teacher(o), doctest::Contains("expected [1, 1, 384]"), repa::InputError);
  ::unsetenv("XDG_CACHE_HOME");
}

TEST_CASE("a TorchScript teacher returning tokens or a dict, announced as running code from the file") {
  repa::test::ScratchDir dir("repa-teacher");
  torch::jit::Module tokens_module("TokenEncoder");
  tokens_module.register_parameter("scale", torch::full({1}, 2.0), false);
  tokens_module.define(R"(
def forward(self, x):
    return (x[:, :, ::14, ::14].flatten(2).transpose(1, 2) * self.scale)
)");
  tokens_module.save(dir.file("tokens.pt"));
  torch::jit::Module dict_module("DictEncoder");
  dict_module.define(R"(
def forward(self, x):
    t = x[:, :, ::14, ::14].flatten(2).transpose(1, 2)
    return {"x_norm_patchtokens": t, "x_norm_clstoken": t.mean(1)}
)");
  dict_module.save(dir.file("dict.pt"));
  CHECK(is_torchscript_file(dir.file("tokens.pt")));

  TeacherOptions o;
  o.image_size = 28;
  std::string notices;
  o.on_notice = [&](const std::string& n) { notices += n; };
  o.weights = dir.file("tokens.pt");
  auto teacher = make_teacher(o);
  CHECK(notices.find("TorchScript runs code from that file") != std::string::npos);
  CHECK(notices.find(dir.file("tokens.pt")) != std::string::npos);
  CHECK(teacher->token_dim() == 3);
  auto images = torch::full({2, 3, 28, 28}, 0.5);
  auto tokens = teacher->encode(images);
  CHECK((tokens.patch_tokens.sizes() == torch::IntArrayRef{2, 4, 3}));
  CHECK(tokens.patch_tokens[0][0][0].item<double>() == doctest::Approx(2 * (0.5 - 0.485) / 0.229).epsilon(1e-5));
  CHECK_FALSE(tokens.cls_token.defined());

  o.weights = dir.file("dict.pt");
  auto dict_teacher = make_teacher(o);
  auto dict_tokens = dict_teacher->encode(images);
  CHECK((dict_tokens.patch_tokens.sizes() == torch::IntArrayRef{2, 4, 3}));
  CHECK((dict_tokens.cls_token.sizes() == torch::IntArrayRef{2, 3}));

  torch::jit::Module bad("Bad");
  bad.define(R"(
def forward(self, x):
    return x.sum()
)");
  bad.save(dir.file("bad.pt"));
  o.weights = dir.file("bad.pt");
  CHECK_THROWS_WITH_AS(make_teacher(o), doctest::Contains("expected (B,N,D)"), repa::InputError);
}
