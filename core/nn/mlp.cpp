#include "core/nn/mlp.h"

#include "core/nn/fused_ops.h"
#include "core/nn/linear.h"

namespace repa::nn {

MlpImpl::MlpImpl(int64_t dim, int64_t hidden_dim, bool tanh) : tanh_gelu(tanh) {
  fc1 = register_module("fc1", repa::nn::Linear(dim, hidden_dim));
  fc2 = register_module("fc2", repa::nn::Linear(hidden_dim, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  if (!tanh_gelu) return fc2->forward(torch::gelu(fc1->forward(x)));
  // fc1's bias is added inside the GELU pass rather than by the GEMM (addmm copies it into the output first).
  return fc2->forward(gelu_tanh(torch::matmul(x, fc1->weight.t()), fc1->bias));
}

}  // namespace repa::nn
