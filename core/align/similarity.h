// The comparisons REPA and U-REPA make between projected tokens P and teacher tokens E (both (B, N, D)).
#pragma once
#include <torch/types.h>

#include <string>

namespace repa::align {

// L2-normalises the last dimension (x / max(|x|, 1e-12)), as torch's F.normalize.
torch::Tensor l2_normalize(const torch::Tensor& tokens);

// Per image, the mean over tokens of the cosine between already-normalised P and E: shape (B,).
torch::Tensor mean_token_cosine(const torch::Tensor& p_normalized, const torch::Tensor& e_normalized);

// The same from unnormalised P and E: (p·e) / (max(|p|, 1e-12)·max(|e|, 1e-12)) per token, which equals
// mean_token_cosine(l2_normalize(P), l2_normalize(E)) without materialising either normalised tensor (about half
// the passes over (B, N, D) forward and backward).
torch::Tensor mean_cosine_similarity(const torch::Tensor& p, const torch::Tensor& e);

// How the U-REPA manifold loss pairs tokens.
enum class ManifoldReduction {
  PerImage,     // SimpleTuner's: mean over (B, N, N) of (P_b P_bᵀ − E_b E_bᵀ)², pairs within each image
  AcrossBatch,  // every token of the batch against every other: mean over (BN, BN), pairs across images too
};
ManifoldReduction parse_manifold_reduction(const std::string& name);  // "per_image" | "across_batch"
std::string to_string(ManifoldReduction reduction);

// The manifold (relative-similarity) loss between normalised P and E.
torch::Tensor manifold_loss(const torch::Tensor& p_normalized, const torch::Tensor& e_normalized,
                            ManifoldReduction reduction = ManifoldReduction::PerImage);

}  // namespace repa::align
