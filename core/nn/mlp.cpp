#include "core/nn/mlp.h"

namespace repa::nn {

MlpImpl::MlpImpl(int64_t dim, int64_t hidden_dim, bool tanh) : tanh_gelu(tanh) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden_dim));
  fc2 = register_module("fc2", torch::nn::Linear(hidden_dim, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(torch::gelu(fc1->forward(x), tanh_gelu ? "tanh" : "none"));
}

}  // namespace repa::nn
