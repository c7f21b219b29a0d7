// The leaf layers of the diffusers models (Linear, Conv2d, GroupNorm, LayerNorm, Embedding) with PyTorch's
// parameter names and default initialisation. They are our own so that a model can be built without
// initialising its weights: loading a checkpoint overwrites them anyway, and an SDXL-sized UNet spends
// seconds in random init (or, for a parameter count, would touch 10 GB it never needs).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/nn/layer_adapter.h"

namespace repa::models::diffusers {

// How parameters are created while a ParameterInitScope is alive on this thread.
enum class ParameterInit {
  Default,        // PyTorch's defaults (kaiming-uniform weights, fan-in biases, unit norms)
  Uninitialized,  // torch::empty: for weights that are loaded right after, or only counted
};

class ParameterInitScope {
 public:
  explicit ParameterInitScope(ParameterInit mode);
  ~ParameterInitScope();
  ParameterInitScope(const ParameterInitScope&) = delete;
  ParameterInitScope& operator=(const ParameterInitScope&) = delete;
  static ParameterInit current();

 private:
  ParameterInit previous_;
};

struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t in_features, out_features;
  torch::Tensor weight, bias;
  std::shared_ptr<repa::nn::LayerAdapter> adapter;  // set by repa::adapters (LoRA); null: the plain layer
};
TORCH_MODULE(Linear);

struct Conv2dImpl : torch::nn::Module {
  Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
             int64_t padding = 0, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t in_channels, out_channels, kernel_size, stride, padding;
  torch::Tensor weight, bias;
  std::shared_ptr<repa::nn::LayerAdapter> adapter;  // set by repa::adapters (LoRA); null: the plain layer
};
TORCH_MODULE(Conv2d);

// A layer that can carry an adapter (LoRA, DoRA): a diffusers Linear or Conv2d, or a repa::nn::Linear. Its
// adapter slot, weight, bias, stride and padding; slot null for any other module. The one place that knows which
// layers take adapters (the LoRA hooks and the checkpointed blocks' trainable parameters both ask it).
struct AdaptableLayer {
  std::shared_ptr<repa::nn::LayerAdapter>* slot = nullptr;
  torch::Tensor weight, bias;
  int64_t stride = 1, padding = 0;
};
AdaptableLayer adaptable_layer(torch::nn::Module& module);

struct GroupNormImpl : torch::nn::Module {
  GroupNormImpl(int64_t num_groups, int64_t num_channels, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t num_groups, num_channels;
  double eps;
  torch::Tensor weight, bias;
};
TORCH_MODULE(GroupNorm);

struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t dim, double eps = 1e-5, bool elementwise_affine = true);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t dim;
  double eps;
  torch::Tensor weight, bias;  // undefined without elementwise affine
};
TORCH_MODULE(LayerNorm);

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim);
  torch::Tensor forward(const torch::Tensor& indices);
  int64_t num_embeddings, embedding_dim;
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

// The activations diffusers' configs name in `act_fn` (and `resnet_act_fn`).
enum class Activation { SiLU, GELU, Mish, ReLU };
Activation parse_activation(const std::string& name, const std::string& key);  // InputError naming key
torch::Tensor apply_activation(Activation act, const torch::Tensor& x);

}  // namespace repa::models::diffusers
