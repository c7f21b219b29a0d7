#include "core/align/similarity.h"

#include <torch/torch.h>

#include "core/base/error.h"

namespace repa::align {

torch::Tensor l2_normalize(const torch::Tensor& tokens) {
  return torch::nn::functional::normalize(tokens, torch::nn::functional::NormalizeFuncOptions().p(2).dim(-1));
}

torch::Tensor mean_token_cosine(const torch::Tensor& p_normalized, const torch::Tensor& e_normalized) {
  return (p_normalized * e_normalized).sum(-1).mean(-1);
}

torch::Tensor mean_cosine_similarity(const torch::Tensor& p, const torch::Tensor& e) {
  constexpr double kEps = 1e-12;  // F.normalize's
  const auto dot = (p * e).sum(-1);
  const auto norms = torch::linalg_vector_norm(p, 2, {-1}).clamp_min(kEps) *
                     torch::linalg_vector_norm(e, 2, {-1}).clamp_min(kEps);
  return (dot / norms).mean(-1);
}

ManifoldReduction parse_manifold_reduction(const std::string& name) {
  if (name == "per_image" || name.empty()) return ManifoldReduction::PerImage;
  if (name == "across_batch") return ManifoldReduction::AcrossBatch;
  throw InputError("manifold_reduction '" + name + "': expected per_image or across_batch");
}

std::string to_string(ManifoldReduction reduction) {
  return reduction == ManifoldReduction::AcrossBatch ? "across_batch" : "per_image";
}

torch::Tensor manifold_loss(const torch::Tensor& p_normalized, const torch::Tensor& e_normalized,
                            ManifoldReduction reduction) {
  if (reduction == ManifoldReduction::PerImage) {
    const auto p_gram = torch::bmm(p_normalized, p_normalized.transpose(1, 2));
    const auto e_gram = torch::bmm(e_normalized, e_normalized.transpose(1, 2));
    return (p_gram - e_gram).pow(2).mean();
  }
  const auto p = p_normalized.reshape({-1, p_normalized.size(-1)});
  const auto e = e_normalized.reshape({-1, e_normalized.size(-1)});
  return (torch::mm(p, p.t()) - torch::mm(e, e.t())).pow(2).mean();
}

}  // namespace repa::align
