#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/align/repa_regularizer.h"
#include "core/align/similarity.h"
#include "core/base/error.h"
#include "core/nn/state_loading.h"

using namespace repa::align;
using nlohmann::json;

namespace {

// λ 0.5 constant; projectors are LayerNorm + identity Linear so a token [1, 3] projects to [-a, a] and
// [3, 1] to [a, -a] (a = 1/sqrt(1 + 1e-5)); after normalisation these are ±[-1, 1]/√2.
RepaRegularizer make(const json& extra = json::object(), std::vector<int64_t> teachers = {2}) {
  json config = {{"crepa_enabled", true}, {"crepa_lambda", 0.5}, {"crepa_block_index", 1}};
  config.update(extra);
  RepaRegularizer r(RepaOptions::from_json(config, 100), 2, std::move(teachers));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < r.projectors()->size(); ++i) {
    auto& p = r.projectors()->at(i);
    p->linear->weight.copy_(torch::eye(2));
    p->linear->bias.zero_();
  }
  return r;
}

torch::Tensor tokens(const std::vector<float>& values, int64_t n) {
  return torch::tensor(values).reshape({1, n, 2});
}

}  // namespace

TEST_CASE("REPA loss is −weight · mean cosine, with SimpleTuner's scalars") {
  auto r = make();
  auto hidden = tokens({1, 3, 3, 1}, 2).requires_grad_(true);
  auto teacher = tokens({-1, 1, 1, 1}, 2).requires_grad_(true);
  // cos(token 0) = 1, cos(token 1) = ([1,-1]·[1,1]) = 0 → mean 0.5 → loss −0.25.
  const auto out = r.compute(hidden, {teacher}, 10);
  CHECK(out.applied);
  CHECK(out.loss.item<double>() == doctest::Approx(-0.25));
  CHECK(out.scalars.at("crepa_loss") == doctest::Approx(-0.25));
  CHECK(out.scalars.at("crepa_alignment_score") == doctest::Approx(0.5));
  CHECK(out.scalars.at("crepa_similarity_self") == doctest::Approx(0.5));
  CHECK(out.scalars.at("crepa_weight") == doctest::Approx(0.5));
  CHECK(out.scalars.at("crepa_cutoff") == 0.0);
  CHECK(out.scalars.at("crepa_alignment_score_ema") == doctest::Approx(0.5));

  out.loss.backward();
  CHECK(hidden.grad().abs().sum().item<double>() > 0);
  CHECK_FALSE(teacher.grad().defined());  // the teacher never receives gradients
  for (const auto& p : r.parameters()) CHECK(p.grad().defined());
}

TEST_CASE("a scheduled weight of 0 is a cut-off: loss 0, scores still logged") {
  auto r = make({{"crepa_warmup_steps", 4}});
  const auto out = r.compute(tokens({1, 3, 3, 1}, 2), {tokens({-1, 1, 1, 1}, 2)}, 0);
  CHECK_FALSE(out.applied);
  CHECK(out.loss.item<double>() == 0.0);
  CHECK_FALSE(out.loss.requires_grad());
  CHECK(out.scalars.at("crepa_cutoff") == 1.0);
  CHECK(out.scalars.at("crepa_weight") == 0.0);
  CHECK(out.scalars.at("crepa_loss") == 0.0);
  CHECK(out.scalars.at("crepa_alignment_score") == doctest::Approx(0.5));
  // Step 2 of a 4-step warm-up: weight 0.25 → loss −0.125.
  CHECK(r.compute(tokens({1, 3, 3, 1}, 2), {tokens({-1, 1, 1, 1}, 2)}, 2).loss.item<double>() ==
        doctest::Approx(-0.125));
}

TEST_CASE("lambda 0 switches REPA off: nothing logged, the schedule does not move") {
  auto r = make({{"crepa_lambda", 0.0}});
  const auto out = r.compute(tokens({1, 3, 3, 1}, 2), {tokens({-1, 1, 1, 1}, 2)}, 5);
  CHECK_FALSE(out.applied);
  CHECK(out.scalars.empty());
  CHECK_FALSE(r.schedule().similarity_ema().has_value());
}

TEST_CASE("several teachers: one projector each, named projectors.<i>, losses averaged") {
  auto r = make(json::object(), {2, 2});
  CHECK(r.projectors()->named_parameters().contains("projectors.1.linear.weight"));
  // Teacher A gives mean cos 0.5 (as above); teacher B matches both tokens (cos 1) → mean 0.75.
  const auto out = r.compute(tokens({1, 3, 3, 1}, 2), {tokens({-1, 1, 1, 1}, 2), tokens({-1, 1, 1, -1}, 2)}, 3);
  CHECK(out.scalars.at("crepa_alignment_score") == doctest::Approx(0.75));
  CHECK(out.loss.item<double>() == doctest::Approx(-0.375));
  auto single = make();
  CHECK(single.projectors()->named_parameters().contains("projector.norm.weight"));
}

TEST_CASE("token counts differing: resampled to the smaller, or mean-pooled with crepa_spatial_align false") {
  // 4 hidden tokens on a 2x2 grid vs 1 teacher token. Projected tokens: three [-a, a] and one [a, -a].
  const auto hidden = tokens({1, 3, 1, 3, 3, 1, 1, 3}, 4);
  const auto teacher = tokens({-1, 1}, 1);
  // Bilinear 2x2 → 1x1 samples the centre, the average of the four: [-a/2, a/2], cos 1 with [-1, 1].
  CHECK(make().compute(hidden, {teacher}, 1).scalars.at("crepa_alignment_score") == doctest::Approx(1.0));
  // Mean-pooling gives the same direction here; against [1, 1] both give 0.
  auto pooled = make({{"crepa_spatial_align", false}});
  CHECK(pooled.compute(hidden, {teacher}, 1).scalars.at("crepa_alignment_score") == doctest::Approx(1.0));
  CHECK(pooled.compute(hidden, {tokens({1, 1}, 1)}, 2).scalars.at("crepa_alignment_score") ==
        doctest::Approx(0.0).epsilon(1e-6));
}

TEST_CASE("cls mode takes the CLS token (B, D) as the single teacher token") {
  auto r = make({{"studio", {{"teacher_tokens", "cls"}}}});
  const auto hidden = tokens({1, 3, 1, 3, 3, 1, 1, 3}, 4);
  const auto cls = torch::tensor({-1.f, 1.f}).reshape({1, 2});
  CHECK(r.compute(hidden, {cls}, 1).scalars.at("crepa_alignment_score") == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(r.compute(hidden, {tokens({1, 3, 1, 3, 3, 1, 1, 3}, 4)}, 2), doctest::Contains("cls"),
                       repa::InputError);
  const auto picked = select_teacher_tokens(TeacherTokens::Cls, torch::zeros({1, 4, 2}), cls);
  CHECK((picked.sizes() == torch::IntArrayRef{1, 1, 2}));
}

TEST_CASE("iREPA: conv projector, teacher z-scored, grids respected") {
  auto r = RepaRegularizer(
      RepaOptions::from_json({{"crepa_enabled", true}, {"irepa_enabled", true}, {"irepa_projector_kernel_size", 1}}, 0),
      2, {2});
  CHECK(r.options().head.projector == ProjectorKind::Conv);
  CHECK(r.projectors()->named_parameters().contains("projector.projection.weight"));
  const auto out = r.compute(torch::randn({2, 6, 2}), {torch::randn({2, 24, 2})}, 1, TokenGrid{2, 3});
  CHECK(std::isfinite(out.loss.item<double>()));
  CHECK_THROWS_AS(r.compute(torch::randn({2, 6, 2}), {torch::randn({2, 24, 2})}, 1, TokenGrid{2, 2}), repa::InputError);
}

TEST_CASE("REPA errors name the shapes and the block") {
  auto r = make();
  CHECK_THROWS_WITH_AS(r.compute(torch::zeros({1, 2, 2, 2}), {torch::zeros({1, 2, 2})}, 0),
                       doctest::Contains("[1, 2, 2, 2]"), repa::InputError);
  CHECK_THROWS_WITH_AS(r.compute(torch::zeros({1, 2, 2}), {torch::zeros({1, 2, 3})}, 0), doctest::Contains("width 3"),
                       repa::InputError);
  CHECK_THROWS_WITH_AS(r.compute(torch::zeros({1, 2, 2}), {torch::zeros({2, 2, 2})}, 0), doctest::Contains("batch"),
                       repa::InputError);
  CHECK_THROWS_WITH_AS(r.compute(torch::zeros({1, 2, 5}), {torch::zeros({1, 2, 2})}, 0), doctest::Contains("[1, 2, 5]"),
                       repa::InputError);
  CHECK_NOTHROW(r.check_block_index(2));
  CHECK_THROWS_WITH_AS(r.check_block_index(1), doctest::Contains("crepa_block_index"), repa::InputError);
}

TEST_CASE("REPA computes in fp32 from bf16 hidden states, and its state round-trips") {
  auto r = make({{"crepa_similarity_threshold", 0.9}, {"crepa_threshold_mode", "permanent"}});
  const auto out = r.compute(tokens({1, 3, 3, 1}, 2).to(torch::kBFloat16), {tokens({-1, 1, 1, -1}, 2)}, 1);
  CHECK((out.loss.scalar_type() == torch::kFloat32));
  CHECK(out.scalars.at("crepa_cutoff") == 1.0);  // cos 1 and 1 → EMA 1 ≥ 0.9: cut off and latched
  auto restored = make({{"crepa_similarity_threshold", 0.9}, {"crepa_threshold_mode", "permanent"}});
  restored.load_state(json::parse(r.state().dump()));
  CHECK(restored.schedule().cutoff());
  CHECK(*restored.schedule().similarity_ema() == doctest::Approx(1.0));
  CHECK_THROWS_AS(restored.load_state(json::array()), repa::InputError);
}

TEST_CASE("weight names: REPA's projectors.<i>.{0,2,4} for the mlp, SimpleTuner checkpoints load renamed") {
  RepaRegularizer mlp(RepaOptions::from_json({{"crepa_enabled", true}, {"studio", {{"projector", "mlp"}}}}, 0), 4, {3});
  const auto names = mlp.projectors()->named_parameters();
  CHECK(names.contains("projectors.0.0.weight"));
  CHECK(names.contains("projectors.0.4.bias"));
  CHECK(names["projectors.0.2.weight"].size(0) == 2048);

  // A SimpleTuner model checkpoint carries the head as crepa_projector.{0 = LayerNorm, 1 = Linear}.
  auto r = make();
  std::map<std::string, torch::Tensor> checkpoint = {{"crepa_projector.0.weight", torch::full({2}, 2.f)},
                                                     {"crepa_projector.0.bias", torch::full({2}, 0.5f)},
                                                     {"crepa_projector.1.weight", torch::full({2, 2}, 3.f)},
                                                     {"crepa_projector.1.bias", torch::full({2}, -1.f)},
                                                     {"transformer_blocks.0.attn.to_q.weight", torch::zeros({2, 2})}};
  const auto renamed = projector_weights_from_simpletuner(checkpoint, "crepa");
  CHECK(renamed.size() == 4);
  repa::nn::load_state(*r.projectors(), renamed, "checkpoint.safetensors");
  CHECK(r.projectors()->at(0)->norm->weight[1].item<float>() == 2.f);
  CHECK(r.projectors()->at(0)->linear->bias[0].item<float>() == -1.f);
  CHECK(projector_weights_from_simpletuner(checkpoint, "urepa").empty());
}

TEST_CASE("mean_cosine_similarity equals the cosine of the normalised tokens, gradients and zero tokens included") {
  torch::manual_seed(3);
  auto p = torch::randn({3, 5, 7});
  auto e = torch::randn({3, 5, 7});
  p[1][2].zero_();  // F.normalize leaves a zero token at zero: its cosine is 0
  e[2][4].zero_();
  const auto p1 = p.clone().requires_grad_(true), p2 = p.clone().requires_grad_(true);
  const auto fused = mean_cosine_similarity(p1, e);
  const auto reference = mean_token_cosine(l2_normalize(p2), l2_normalize(e));
  CHECK(fused.sizes() == torch::IntArrayRef{3});
  CHECK(torch::allclose(fused, reference, 1e-6, 1e-7));
  const auto weights = torch::tensor({0.5f, -1.0f, 2.0f});
  (fused * weights).sum().backward();
  (reference * weights).sum().backward();
  CHECK(torch::allclose(p1.grad(), p2.grad(), 1e-5, 1e-7));
  CHECK(torch::isfinite(p1.grad()).all().item<bool>());
}
