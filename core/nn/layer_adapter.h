// The hook through which an adapter (LoRA, DoRA) adds to a layer's output. A layer holds an optional adapter and
// calls it after its own computation; a layer without one runs exactly the code it ran before. The adapter is
// not registered as a child module, so a model's named_parameters() stay its checkpoint's keys.
#pragma once
#include <torch/torch.h>

namespace repa::nn {

class LayerAdapter {
 public:
  virtual ~LayerAdapter() = default;
  // x: the layer's input; base: the layer's own output (W x + b). Returns the adapted output.
  virtual torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& base) = 0;
};

}  // namespace repa::nn
