#include "core/nn/embeddings.h"

#include <cmath>
#include <string>

#include "core/base/error.h"
#include "core/nn/linear.h"

namespace repa::nn {

torch::Tensor timestep_frequency_embedding(const torch::Tensor& t, int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  const auto freqs = torch::exp(-std::log(max_period) * torch::arange(half, options) / static_cast<double>(half));
  const auto args = t.to(torch::kFloat32).reshape({-1, 1}) * freqs.unsqueeze(0);
  auto embedding = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2) embedding = torch::cat({embedding, torch::zeros_like(embedding.narrow(1, 0, 1))}, -1);
  return embedding;
}

TimestepEmbedderImpl::TimestepEmbedderImpl(int64_t hidden_size, int64_t frequency_size)
    : frequency_embedding_size(frequency_size) {
  mlp = register_module("mlp", torch::nn::Sequential(repa::nn::Linear(frequency_size, hidden_size), torch::nn::SiLU(),
                                                     repa::nn::Linear(hidden_size, hidden_size)));
}

torch::Tensor TimestepEmbedderImpl::forward(const torch::Tensor& t) {
  // The features follow t's floating dtype (as the reference's .to(t.dtype)); integer steps become fp32.
  auto features = timestep_frequency_embedding(t, frequency_embedding_size);
  if (t.is_floating_point()) features = features.to(t.scalar_type());
  return mlp->forward(features);
}

LabelEmbedderImpl::LabelEmbedderImpl(int64_t classes, int64_t hidden_size, double dropout)
    : num_classes(classes), dropout_prob(dropout) {
  if (classes <= 0) throw InputError("label embedder: num_classes must be positive, got " + std::to_string(classes));
  embedding_table =
      register_module("embedding_table", torch::nn::Embedding(classes + (dropout > 0 ? 1 : 0), hidden_size));
}

torch::Tensor LabelEmbedderImpl::drop_labels(const torch::Tensor& labels, const torch::Tensor& drop) const {
  return torch::where(drop.to(torch::kBool), torch::full_like(labels, num_classes), labels);
}

torch::Tensor LabelEmbedderImpl::forward(const torch::Tensor& labels, bool train,
                                         const std::optional<torch::Tensor>& force_drop) {
  auto y = labels.to(torch::kLong);
  if (force_drop) {
    y = drop_labels(y, *force_drop);
  } else if (train && dropout_prob > 0) {
    y = drop_labels(y, torch::rand({y.size(0)}, torch::TensorOptions().device(y.device())) < dropout_prob);
  }
  const int64_t rows = embedding_table->weight.size(0);
  if (y.numel() > 0) {
    const int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
    if (lo < 0 || hi >= rows)
      throw InputError("label embedder: class label " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                       std::to_string(rows - 1) + "] (num_classes " + std::to_string(num_classes) +
                       (rows > num_classes ? ", null label " + std::to_string(num_classes) : std::string()) + ")");
  }
  return embedding_table->forward(y);
}

}  // namespace repa::nn
