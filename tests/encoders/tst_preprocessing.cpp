// The two preprocessing recipes: SimpleTuner's (bilinear to S×S, then ImageNet mean/std) and the REPA
// code's (mean/std, then bicubic to 224 per 256 px).
#include <doctest/doctest.h>

#include <torch/torch.h>

#include "core/base/error.h"
#include "core/encoders/preprocessing.h"

using namespace repa::encoders;

TEST_CASE("recipe names") {
  CHECK(parse_preprocessing("simpletuner") == Preprocessing::SimpleTuner);
  CHECK(parse_preprocessing("repa") == Preprocessing::Repa);
  CHECK_THROWS_WITH_AS(parse_preprocessing("clip"), doctest::Contains("\"clip\""), repa::InputError);
}

TEST_CASE("SimpleTuner: ImageNet mean/std per channel after a bilinear resize") {
  auto grey = torch::full({2, 3, 40, 30}, 0.5);
  auto out = preprocess_simpletuner(grey, 28);
  CHECK((out.sizes() == torch::IntArrayRef{2, 3, 28, 28}));
  CHECK(out[1][0][5][7].item<double>() == doctest::Approx((0.5 - 0.485) / 0.229).epsilon(1e-6));
  CHECK(out[0][1][0][0].item<double>() == doctest::Approx((0.5 - 0.456) / 0.224).epsilon(1e-6));
  CHECK(out[0][2][27][27].item<double>() == doctest::Approx((0.5 - 0.406) / 0.225).epsilon(1e-6));

  // Half-pixel centres (align_corners=False), edges clamped: [0, 1] → [0, 0.25, 0.75, 1].
  auto ramp = torch::tensor({0.0, 1.0}).view({1, 1, 1, 2}).expand({1, 3, 2, 2}).contiguous();
  auto up = preprocess_simpletuner(ramp, 4);
  auto row = up[0][0][1] * 0.229 + 0.485;
  CHECK(row[0].item<double>() == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(row[1].item<double>() == doctest::Approx(0.25).epsilon(1e-6));
  CHECK(row[2].item<double>() == doctest::Approx(0.75).epsilon(1e-6));
  CHECK(row[3].item<double>() == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("REPA: 224 per 256 px, normalised before the bicubic resize") {
  CHECK(repa_encoder_input_size(256) == 224);
  CHECK(repa_encoder_input_size(512) == 448);
  CHECK(repa_encoder_input_size(300) == 224);
  CHECK_THROWS_WITH_AS(repa_encoder_input_size(128), doctest::Contains("128"), repa::InputError);
  auto grey = torch::full({1, 3, 256, 256}, 0.25);
  auto out = preprocess_repa(grey);
  CHECK((out.sizes() == torch::IntArrayRef{1, 3, 224, 224}));
  CHECK(out[0][0][100][3].item<double>() == doctest::Approx((0.25 - 0.485) / 0.229).epsilon(1e-5));
  // Bicubic overshoots at a step edge where bilinear cannot: the normalised image is what gets resized.
  auto step = torch::zeros({1, 3, 256, 256});
  step.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(),
                   torch::indexing::Slice(128, 256)},
                  1.0);
  auto s = preprocess_repa(step);
  CHECK(s.max().item<double>() > (1.0 - 0.406) / 0.225);
}

TEST_CASE("bad input shapes are named") {
  CHECK_THROWS_WITH_AS(preprocess_simpletuner(torch::zeros({3, 8, 8}), 14), doctest::Contains("(B,3,H,W)"),
                       repa::InputError);
}
