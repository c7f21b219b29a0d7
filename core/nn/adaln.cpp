#include "core/nn/adaln.h"
#include "core/nn/linear.h"

namespace repa::nn {

torch::nn::Sequential adaln_modulation(int64_t hidden_size, int64_t chunks) {
  return torch::nn::Sequential(torch::nn::SiLU(), repa::nn::Linear(hidden_size, chunks * hidden_size));
}

}  // namespace repa::nn
