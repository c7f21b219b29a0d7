// torch::optim::AdamW with its per-parameter update as one pass over memory.
#pragma once
#include <torch/torch.h>

#include <string>
#include <type_traits>
#include <utility>

namespace repa::train {

// LibTorch's AdamW runs about ten ATen operators per parameter tensor and step (decay, two moment updates, a
// square root, a division, an add, an addcdiv), each a pass over memory and a dispatch. This optimizer does the
// same arithmetic element by element in one pass (vectorised, split over LibTorch's threads) for contiguous
// fp32 CPU parameters, and defers to AdamW for the rest (CUDA, other dtypes, amsgrad). State, options, groups
// and serialisation are AdamW's own, so checkpoints written by one load into the other.
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// The key LibTorch's optimizers file a parameter's state under: its TensorImpl address, streamed into a string
// in LibTorch 1.x, the pointer itself in 2.x (taken from the state map's own key type).
using OptimizerStateKey =
    typename std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;
OptimizerStateKey optimizer_state_key(const torch::Tensor& parameter);

}  // namespace repa::train
