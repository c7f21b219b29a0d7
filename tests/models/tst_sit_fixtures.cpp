// The extra sit_forward fixtures in tests/models/fixtures (made by make_sit_fixtures.py from REPA's own
// models/sit.py): other seeds, patches 2/4/8, odd grids, 3 input channels, several projectors, a label
// table without the null row. Same rule as the conformance runner: |got − want| <= atol + rtol·|want|.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/io/safetensors.h"
#include "core/models/sit.h"
#include "core/nn/state_loading.h"
#include "tests/test_support.h"

using namespace repa;

namespace {

bool within(const torch::Tensor& got, const torch::Tensor& want, double atol, double rtol) {
  if (got.sizes() != want.sizes()) return false;
  const auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  return (g - w).abs().le(atol + rtol * w.abs()).all().item<bool>();
}

}  // namespace

TEST_CASE("SiT matches REPA's models/sit.py on the extra sit_forward fixtures") {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::source_path("tests/models/fixtures"))) {
    if (entry.path().extension() != ".safetensors") continue;
    const auto file = io::SafetensorsFile::open(entry.path().string());
    REQUIRE(file.meta("kind").value_or("") == "sit_forward");
    const auto config = nlohmann::json::parse(*file.meta("config"));
    models::SiT model(models::SiTConfig::from_repa_kwargs(config));
    std::map<std::string, torch::Tensor> weights;
    for (const auto& name : file.names())
      if (name.rfind("param.", 0) == 0) weights[name.substr(6)] = file.tensor(name);
    nn::load_state(*model, weights, file.path());
    model->eval();
    torch::NoGradGuard no_grad;
    const auto out = model->forward(file.tensor("in.x"), file.tensor("in.t"), file.tensor("in.y"),
                                    config.at("encoder_depth").get<int64_t>() - 1);
    const double atol = std::stod(*file.meta("atol")), rtol = std::stod(*file.meta("rtol"));
    CHECK_MESSAGE(within(out.prediction, file.tensor("out.x"), atol, rtol), entry.path().filename().string());
    const auto zs = model->project(out.hidden);
    REQUIRE(zs.size() == config.at("z_dims").size());
    for (std::size_t k = 0; k < zs.size(); ++k) {
      const std::string name = "out.zs." + std::to_string(k);
      CHECK_MESSAGE(within(zs[k], file.tensor(name), atol, rtol), entry.path().filename().string(), " ", name);
    }
    ++checked;
  }
  CHECK(checked == 3);
}
