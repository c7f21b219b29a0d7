// Conditioning embedders of DiT/SiT: sinusoidal timestep features → MLP, and class labels with a null
// class (index num_classes) for classifier-free guidance.
#pragma once
#include <torch/torch.h>

#include <optional>

namespace repa::nn {

// (N,) times → (N, dim) features [cos(t·f_0..f_{h-1}), sin(t·f_0..f_{h-1})], f_i = max_period^(−i/h),
// h = dim/2; an odd dim gets a trailing zero column. Computed in fp32 whatever t's dtype.
torch::Tensor timestep_frequency_embedding(const torch::Tensor& t, int64_t dim, double max_period = 10000.0);

// mlp.0 (frequency → hidden), SiLU, mlp.2 (hidden → hidden).
struct TimestepEmbedderImpl : torch::nn::Module {
  explicit TimestepEmbedderImpl(int64_t hidden_size, int64_t frequency_embedding_size = 256);
  torch::Tensor forward(const torch::Tensor& t);

  int64_t frequency_embedding_size;
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(TimestepEmbedder);

// embedding_table has num_classes + 1 rows when dropout_prob > 0 (the extra row is the null label).
struct LabelEmbedderImpl : torch::nn::Module {
  LabelEmbedderImpl(int64_t num_classes, int64_t hidden_size, double dropout_prob);

  // Replaces labels by the null label where drop is true.
  torch::Tensor drop_labels(const torch::Tensor& labels, const torch::Tensor& drop) const;
  // In training each label is dropped with probability dropout_prob; force_drop (N,) bool/int overrides.
  torch::Tensor forward(const torch::Tensor& labels, bool train,
                        const std::optional<torch::Tensor>& force_drop = std::nullopt);

  int64_t num_classes;
  double dropout_prob;
  torch::nn::Embedding embedding_table{nullptr};
};
TORCH_MODULE(LabelEmbedder);

}  // namespace repa::nn
