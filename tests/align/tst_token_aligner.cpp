#include <doctest/doctest.h>
#include <torch/torch.h>

#include "core/align/token_aligner.h"
#include "core/base/error.h"

using namespace repa::align;

namespace {

// (1, N, 1) tokens holding 0, 1, ..., N-1: on a grid of width w, token r*w + c holds r*w + c.
torch::Tensor ramp(int64_t n) {
  return torch::arange(n, torch::kFloat32).reshape({1, n, 1});
}

std::vector<float> values(const torch::Tensor& t) {
  auto flat = t.detach().contiguous().reshape({-1});
  return std::vector<float>(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

void check_values(const torch::Tensor& got, const std::vector<float>& want) {
  const auto v = values(got);
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(want[i]).epsilon(1e-6));
}

}  // namespace

TEST_CASE("grids are inferred as the factorisation closest to the reference aspect") {
  CHECK((infer_token_grid(16) == TokenGrid{4, 4}));
  CHECK((infer_token_grid(12) == TokenGrid{3, 4}));          // 3x4 and 4x3 tie; the smaller height wins
  CHECK((infer_token_grid(12, {4, 3}) == TokenGrid{4, 3}));  // a tall reference
  CHECK((infer_token_grid(24, {64, 96}) == TokenGrid{4, 6}));
  CHECK((infer_token_grid(7) == TokenGrid{1, 7}));
  CHECK_THROWS_AS(infer_token_grid(0), repa::InputError);
}

TEST_CASE("linear resampling over the sequence, align_corners false") {
  // 4 → 2 tokens samples source positions 0.5 and 2.5.
  check_values(interpolate_tokens(ramp(4), 2), {0.5f, 2.5f});
  // 6 → 3 (not squares): positions 0.5, 2.5, 4.5.
  check_values(interpolate_tokens(ramp(6), 3), {0.5f, 2.5f, 4.5f});
}

TEST_CASE("square counts resample bilinearly on the grid, not along the sequence") {
  // 4x4 holding 4r+c → 2x2 samples (0.5,0.5), (0.5,2.5), (2.5,0.5), (2.5,2.5): 2.5, 4.5, 10.5, 12.5.
  // (Linear over the sequence would give 1.5, 5.5, 9.5, 13.5.)
  check_values(interpolate_tokens(ramp(16), 4), {2.5f, 4.5f, 10.5f, 12.5f});
}

TEST_CASE("given grids resample bilinearly between rectangular layouts") {
  // 2x4 holding 4r+c → 1x2 samples (0.5, 0.5) and (0.5, 2.5).
  check_values(interpolate_tokens(ramp(8), 2, TokenGrid{2, 4}, TokenGrid{1, 2}), {2.5f, 4.5f});
  // Same count, different layout: 2x8 holding 8r+c → 4x4; rows sample 0, 0.25, 0.75, 1 (clamped at the
  // edges), columns 0.5, 2.5, 4.5, 6.5, and the plane 8r + c is reproduced exactly.
  std::vector<float> want;
  for (float r : {0.f, 0.25f, 0.75f, 1.f})
    for (float c : {0.5f, 2.5f, 4.5f, 6.5f}) want.push_back(8 * r + c);
  check_values(interpolate_tokens(ramp(16), 16, TokenGrid{2, 8}, TokenGrid{4, 4}), want);
}

TEST_CASE("alignment: equal counts pass, otherwise both go to the smaller count") {
  const auto p16 = ramp(16), t4 = ramp(4) * 10;
  SUBCASE("equal counts are returned untouched") {
    const auto [p, t] = align_tokens(t4, t4, {});
    CHECK(p.is_same(t4));
    CHECK(t.is_same(t4));
  }
  SUBCASE("the larger side is resampled to the smaller") {
    const auto [p, t] = align_tokens(p16, t4, {});
    check_values(p, {2.5f, 4.5f, 10.5f, 12.5f});
    CHECK(t.is_same(t4));
    const auto [t2, p2] = align_tokens(t4, p16, {});  // symmetric
    CHECK(t2.is_same(t4));
    check_values(p2, {2.5f, 4.5f, 10.5f, 12.5f});
  }
  SUBCASE("spatial alignment off mean-pools both sides to one token") {
    const auto [p, t] = align_tokens(ramp(4), ramp(2) + 10, TokenAlignment{false, {}, {}});
    check_values(p, {1.5f});
    check_values(t, {10.5f});
  }
  SUBCASE("with grids, equal counts in different layouts still resample to the smaller side's grid") {
    TokenAlignment how{true, TokenGrid{4, 4}, TokenGrid{2, 8}};
    const auto [p, t] = align_tokens(p16, ramp(16), how);
    CHECK(p.is_same(p16));
    CHECK(values(t)[0] == doctest::Approx(0.5f));
    CHECK(values(t)[15] == doctest::Approx(14.5f));  // 8*1 + 6.5
  }
  SUBCASE("shapes other than (B, N, D) are refused with the shape named") {
    CHECK_THROWS_WITH_AS(align_tokens(torch::zeros({2, 3}), t4, {}), doctest::Contains("[2, 3]"), repa::InputError);
  }
}

TEST_CASE("iREPA spatial z-score per channel over the tokens") {
  const auto x = torch::tensor({1.f, 2.f, 3.f}).reshape({1, 3, 1});
  // mean 2, unbiased std 1.
  check_values(spatial_zscore(x, 1.0), {-1.f / 1.000001f, 0.f, 1.f / 1.000001f});
  // alpha 0.5 removes half the mean: (x - 1) / (1 + 1e-6).
  check_values(spatial_zscore(x, 0.5), {0.f, 1.f / 1.000001f, 2.f / 1.000001f});
  // Channels are independent: a second channel scaled by 10 gives the same z-scores.
  const auto two = torch::cat({x, x * 10}, 2);
  const auto z = spatial_zscore(two, 1.0);
  CHECK(torch::allclose(z.select(2, 0), z.select(2, 1)));
}
