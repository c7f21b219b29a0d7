#include "core/align/token_aligner.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <tuple>

#include "core/base/error.h"

namespace repa::align {
namespace {

namespace F = torch::nn::functional;

int64_t exact_isqrt(int64_t n) {
  int64_t r = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while (r * r > n) --r;
  while ((r + 1) * (r + 1) <= n) ++r;
  return r;
}

bool is_square(int64_t n) {
  const int64_t r = exact_isqrt(n);
  return r * r == n;
}

void require_tokens(const torch::Tensor& t, const char* what) {
  if (t.dim() != 3) throw InputError(std::string(what) + ": expected tokens (B, N, D), got shape " + shape_string(t));
}

}  // namespace

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

TokenGrid infer_token_grid(int64_t token_count, TokenGrid reference) {
  if (token_count < 1) throw InputError("cannot lay out " + std::to_string(token_count) + " tokens on a grid");
  const double reference_ratio =
      static_cast<double>(reference.width) / static_cast<double>(std::max<int64_t>(reference.height, 1));
  std::tuple<double, int64_t, int64_t> best{INFINITY, 0, 0};
  for (int64_t h = 1; h <= exact_isqrt(token_count); ++h) {
    if (token_count % h) continue;
    const int64_t w = token_count / h;
    for (const auto& [ch, cw] : {std::pair<int64_t, int64_t>{h, w}, std::pair<int64_t, int64_t>{w, h}}) {
      const double error = std::abs(std::log((static_cast<double>(cw) / static_cast<double>(ch)) / reference_ratio));
      best = std::min(best, std::tuple<double, int64_t, int64_t>{error, ch, cw});
    }
  }
  return {std::get<1>(best), std::get<2>(best)};
}

torch::Tensor interpolate_tokens(const torch::Tensor& tokens, int64_t target_tokens,
                                 std::optional<TokenGrid> source_grid, std::optional<TokenGrid> target_grid) {
  require_tokens(tokens, "token interpolation");
  const int64_t b = tokens.size(0), n = tokens.size(1), d = tokens.size(2);
  if (n == target_tokens && (!source_grid || !target_grid || *source_grid == *target_grid)) return tokens;
  if (target_tokens < 1)
    throw InputError("token interpolation: target of " + std::to_string(target_tokens) + " tokens");

  const auto channels_first = tokens.permute({0, 2, 1});  // (B, D, N)
  const auto bilinear = [&](TokenGrid from, TokenGrid to) {
    auto grid = channels_first.reshape({b, d, from.height, from.width});
    auto out = F::interpolate(grid, F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{to.height, to.width})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
    return out.reshape({b, d, target_tokens});
  };
  const auto linear = [&]() {
    return F::interpolate(channels_first.contiguous(), F::InterpolateFuncOptions()
                                                           .size(std::vector<int64_t>{target_tokens})
                                                           .mode(torch::kLinear)
                                                           .align_corners(false));
  };

  torch::Tensor out;
  if (!source_grid && !target_grid) {
    if (is_square(n) && is_square(target_tokens)) {
      const int64_t s = exact_isqrt(n), t = exact_isqrt(target_tokens);
      out = bilinear({s, s}, {t, t});
    } else {
      out = linear();
    }
  } else {
    const TokenGrid from = source_grid ? *source_grid : infer_token_grid(n);
    const TokenGrid to = target_grid ? *target_grid : infer_token_grid(target_tokens, from);
    out = (from.tokens() == n && to.tokens() == target_tokens) ? bilinear(from, to) : linear();
  }
  return out.permute({0, 2, 1});
}

std::pair<torch::Tensor, torch::Tensor> align_tokens(const torch::Tensor& projected, const torch::Tensor& teacher,
                                                     const TokenAlignment& how) {
  require_tokens(projected, "token alignment (projected)");
  require_tokens(teacher, "token alignment (teacher)");
  const int64_t np = projected.size(1), nt = teacher.size(1);
  const bool both_grids = how.projected_grid && how.teacher_grid;
  const bool same_layout = !both_grids || *how.projected_grid == *how.teacher_grid;
  if (np == nt && same_layout) return {projected, teacher};

  if (!how.spatial_align) return {projected.mean(1, true), teacher.mean(1, true)};

  std::optional<TokenGrid> target_grid;
  int64_t target_tokens = std::min(np, nt);
  if (both_grids) {
    target_grid = np <= nt ? *how.projected_grid : *how.teacher_grid;
    target_tokens = target_grid->tokens();
  }
  return {interpolate_tokens(projected, target_tokens, how.projected_grid, target_grid),
          interpolate_tokens(teacher, target_tokens, how.teacher_grid, target_grid)};
}

torch::Tensor spatial_zscore(const torch::Tensor& features, double alpha, double eps) {
  require_tokens(features, "spatial z-score");
  const auto mean = features.mean(1, true);
  const bool unbiased = features.size(1) > 1;
  const auto std = features.std(1, unbiased, true);
  return (features - alpha * mean) / (std + eps);
}

}  // namespace repa::align
