#include "core/nn/mlp.h"

#include "core/nn/fused_ops.h"
#include "core/nn/linear.h"

namespace repa::nn {

MlpImpl::MlpImpl(int64_t dim, int64_t hidden_dim, bool tanh) : tanh_gelu(tanh) {
  fc1 = register_module("fc1", repa::nn::Linear(dim, hidden_dim));
  fc2 = register_module("fc2", repa::nn::Linear(hidden_dim, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  const auto h = fc1->forward(x);
  return fc2->forward(tanh_gelu ? gelu_tanh(h) : torch::gelu(h));
}

}  // namespace repa::nn
