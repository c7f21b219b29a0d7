#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/align/urepa_regularizer.h"
#include "core/base/error.h"

using namespace repa::align;
using nlohmann::json;

namespace {

// λ 0.5, manifold weight 2; LayerNorm + identity Linear, so channel vectors [1, 3] and [3, 1] project to
// ±[-1, 1]/√2 after normalisation.
UrepaRegularizer make(const json& extra = json::object()) {
  json config = {{"urepa_enabled", true}, {"urepa_lambda", 0.5}, {"urepa_manifold_weight", 2.0}};
  config.update(extra);
  UrepaRegularizer r(UrepaOptions::from_json(config, 100), 2, {2});
  torch::NoGradGuard no_grad;
  r.projectors()->at(0)->linear->weight.copy_(torch::eye(2));
  r.projectors()->at(0)->linear->bias.zero_();
  return r;
}

// A (1, 2, 1, 2) mid-block output whose two positions carry channel vectors [1, 3] and [3, 1].
torch::Tensor mid_1x2() {
  return torch::tensor({1.f, 3.f, 3.f, 1.f}).reshape({2, 2}).t().contiguous().reshape({1, 2, 1, 2});
}

}  // namespace

TEST_CASE("mid-block output becomes row-major tokens (B, h·w, C)") {
  const auto mid = torch::arange(12, torch::kFloat32).reshape({1, 2, 2, 3});  // C=2, h=2, w=3
  const auto t = mid_block_tokens(mid);
  CHECK((t.sizes() == torch::IntArrayRef{1, 6, 2}));
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c)
      for (int ch = 0; ch < 2; ++ch) CHECK(t[0][r * 3 + c][ch].item<float>() == mid[0][ch][r][c].item<float>());
  CHECK_THROWS_WITH_AS(mid_block_tokens(torch::zeros({2, 3, 4})), doctest::Contains("[2, 3, 4]"), repa::InputError);
}

TEST_CASE("U-REPA loss = weight · (−mean cos + manifold_weight · manifold), hand-worked") {
  auto r = make();
  auto mid = mid_1x2().requires_grad_(true);
  auto teacher = torch::tensor({-1.f, 1.f, 1.f, 1.f}).reshape({1, 2, 2}).requires_grad_(true);
  // P = [-1,1]/√2, [1,-1]/√2; E = [-1,1]/√2, [1,1]/√2. cos: 1 and 0 → alignment −0.5.
  // P Pᵀ = [[1,-1],[-1,1]], E Eᵀ = I → squared differences 0,1,1,0 → manifold 0.5.
  // loss = 0.5 · (−0.5 + 2 · 0.5) = 0.25.
  const auto out = r.compute(mid, {teacher}, 7);
  CHECK(out.applied);
  CHECK(out.loss.item<double>() == doctest::Approx(0.25));
  CHECK(out.scalars.at("urepa_loss") == doctest::Approx(0.25));
  CHECK(out.scalars.at("urepa_alignment_loss") == doctest::Approx(-0.5));
  CHECK(out.scalars.at("urepa_manifold_loss") == doctest::Approx(0.5));
  CHECK(out.scalars.at("urepa_similarity") == doctest::Approx(0.5));
  CHECK(out.scalars.at("urepa_weight") == doctest::Approx(0.5));
  CHECK(out.scalars.at("urepa_cutoff") == 0.0);
  out.loss.backward();
  CHECK(mid.grad().abs().sum().item<double>() > 0);
  CHECK_FALSE(teacher.grad().defined());
  for (const auto& p : r.parameters()) CHECK(p.grad().defined());
}

TEST_CASE("manifold reduction: per image (SimpleTuner) against across the batch") {
  // Two images of one token each: [1, 3] and [3, 1] → p_a·p_b = −1; teachers [1, 0] and [0, 1] → e_a·e_b = 0.
  const auto mid = torch::tensor({1.f, 3.f, 3.f, 1.f}).reshape({2, 2, 1, 1});
  const auto teacher = torch::tensor({1.f, 0.f, 0.f, 1.f}).reshape({2, 1, 2});
  // Within an image a single token's Gram entry is 1 on both sides: manifold 0.
  CHECK(make().compute(mid, {teacher}, 1).scalars.at("urepa_manifold_loss") == doctest::Approx(0.0));
  // Across the batch the off-diagonal pair differs by −1: two of four entries → 0.5.
  auto across = make({{"studio", {{"manifold_reduction", "across_batch"}}}});
  CHECK(across.options().manifold_reduction == ManifoldReduction::AcrossBatch);
  CHECK(across.compute(mid, {teacher}, 1).scalars.at("urepa_manifold_loss") == doctest::Approx(0.5));
}

TEST_CASE("a weight of 0 reports every U-REPA loss as 0 and a cut-off, keeping the similarity") {
  auto r = make({{"urepa_cutoff_step", 3}});
  const auto teacher = torch::tensor({-1.f, 1.f, 1.f, 1.f}).reshape({1, 2, 2});
  const auto out = r.compute(mid_1x2(), {teacher}, 3);
  CHECK_FALSE(out.applied);
  CHECK(out.loss.item<double>() == 0.0);
  for (const char* name : {"urepa_loss", "urepa_alignment_loss", "urepa_manifold_loss", "urepa_weight"})
    CHECK(out.scalars.at(name) == 0.0);
  CHECK(out.scalars.at("urepa_cutoff") == 1.0);
  CHECK(out.scalars.at("urepa_similarity") == doctest::Approx(0.5));
}

TEST_CASE("U-REPA resamples the teacher to the mid-block's token count") {
  // A 4x4 teacher grid to the 1x2 mid-block: 16 and 2 are not both squares → linear over the sequence.
  auto r = make();
  const auto out = r.compute(torch::randn({2, 2, 1, 2}), {torch::randn({2, 16, 2})}, 1);
  CHECK(std::isfinite(out.scalars.at("urepa_similarity")));
  // A teacher of the wrong width names both widths.
  CHECK_THROWS_WITH_AS(r.compute(mid_1x2(), {torch::zeros({1, 4, 5})}, 1), doctest::Contains("width 5"),
                       repa::InputError);
  CHECK_THROWS_WITH_AS(r.compute(torch::zeros({1, 3, 1, 2}), {torch::zeros({1, 4, 2})}, 1),
                       doctest::Contains("[1, 3, 1, 2]"), repa::InputError);
}

TEST_CASE("U-REPA state round-trips through JSON") {
  auto r = make({{"urepa_similarity_threshold", 0.4}, {"urepa_threshold_mode", "recoverable"}});
  const auto teacher = torch::tensor({-1.f, 1.f, 1.f, 1.f}).reshape({1, 2, 2});
  CHECK(r.compute(mid_1x2(), {teacher}, 1).scalars.at("urepa_cutoff") == 1.0);  // EMA 0.5 ≥ 0.4
  auto restored = make({{"urepa_similarity_threshold", 0.4}, {"urepa_threshold_mode", "recoverable"}});
  restored.load_state(json::parse(r.state().dump()));
  CHECK(*restored.schedule().similarity_ema() == doctest::Approx(0.5));
}
