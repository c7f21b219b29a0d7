// More dinov2_forward cases from facebookresearch/dinov2's own module (tests/encoders/fixtures, written by
// make_dinov2_fixtures.py): other seeds, head counts, grids larger and smaller than the table, non-square
// inputs, and every offset/antialias combination.
#include <doctest/doctest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/encoders/dinov2_weights.h"
#include "core/io/safetensors.h"
#include "tests/test_support.h"

using namespace repa::encoders;

TEST_CASE("extra dinov2_forward fixtures from the official module") {
  int fixtures = 0;
  for (const auto& entry : std::filesystem::directory_iterator(repa::test::source_path("tests/encoders/fixtures"))) {
    if (entry.path().extension() != ".safetensors") continue;
    const auto file = repa::io::SafetensorsFile::open(entry.path().string());
    REQUIRE(file.meta("kind").value_or("") == "dinov2_forward");
    const auto config = nlohmann::json::parse(*file.meta("config"));
    const double atol = std::stod(*file.meta("atol")), rtol = std::stod(*file.meta("rtol"));
    Dinov2StateDict state;
    state.source = file.path();
    for (const auto& name : file.names())
      if (name.rfind("param.", 0) == 0) state.tensors[name.substr(6)] = file.tensor(name);
    Dinov2LoadOptions options;
    options.num_heads = config.at("num_heads").get<int64_t>();
    options.interpolate_offset = config.at("interpolate_offset").get<double>();
    options.interpolate_antialias = config.at("interpolate_antialias").get<bool>();
    auto model = load_dinov2(state, options);
    CHECK(model->config().ffn_hidden == config.at("ffn_hidden").get<int64_t>());
    CHECK(model->config().num_register_tokens == config.at("num_register_tokens").get<int64_t>());
    torch::NoGradGuard no_grad;
    const int inputs = std::stoi(*file.meta("inputs"));
    for (int j = 0; j < inputs; ++j) {
      const auto s = "." + std::to_string(j);
      const auto out = model->forward(file.tensor("in.pixels" + s));
      const auto expect_close = [&](const std::string& name, const torch::Tensor& got) {
        const auto want = file.tensor(name);
        INFO(entry.path().filename().string() << " " << name);
        REQUIRE((got.sizes() == want.sizes()));
        CHECK(((got - want).abs() <= atol + rtol * want.abs()).all().item<bool>());
      };
      expect_close("out.x_norm_clstoken" + s, out.cls_token);
      expect_close("out.x_norm_patchtokens" + s, out.patch_tokens);
      if (file.contains("out.x_norm_regtokens" + s)) expect_close("out.x_norm_regtokens" + s, out.register_tokens);
    }
    ++fixtures;
  }
  CHECK(fixtures >= 4);
}
