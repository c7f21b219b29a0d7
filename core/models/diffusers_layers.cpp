#include "core/models/diffusers_layers.h"

#include <cmath>

#include "core/base/error.h"
#include "core/nn/linear.h"

namespace repa::models::diffusers {
namespace {

thread_local ParameterInit tls_init = ParameterInit::Default;

torch::Tensor new_parameter(torch::IntArrayRef shape) { return torch::empty(shape); }

// PyTorch's Linear/Conv default: kaiming_uniform(a = sqrt(5)) on the weight, U(-1/sqrt(fan_in), ..) on the bias,
// which both reduce to the bound 1/sqrt(fan_in).
void init_fan_in(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in) {
  if (ParameterInitScope::current() != ParameterInit::Default) return;
  torch::NoGradGuard no_grad;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  weight.uniform_(-bound, bound);
  if (bias.defined()) bias.uniform_(-bound, bound);
}

void init_affine(torch::Tensor& weight, torch::Tensor& bias) {
  if (ParameterInitScope::current() != ParameterInit::Default) return;
  torch::NoGradGuard no_grad;
  if (weight.defined()) weight.fill_(1.0);
  if (bias.defined()) bias.zero_();
}

}  // namespace

ParameterInitScope::ParameterInitScope(ParameterInit mode) : previous_(tls_init) { tls_init = mode; }
ParameterInitScope::~ParameterInitScope() { tls_init = previous_; }
ParameterInit ParameterInitScope::current() { return tls_init; }

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", new_parameter({out, in}));
  if (with_bias) bias = register_parameter("bias", new_parameter({out}));
  init_fan_in(weight, bias, in);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::linear(x, weight, bias);
  return adapter ? adapter->apply(x, y) : y;
}

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool with_bias)
    : in_channels(in), out_channels(out), kernel_size(k), stride(s), padding(p) {
  weight = register_parameter("weight", new_parameter({out, in, k, k}));
  if (with_bias) bias = register_parameter("bias", new_parameter({out}));
  init_fan_in(weight, bias, in * k * k);
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  auto y = torch::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
  return adapter ? adapter->apply(x, y) : y;
}

GroupNormImpl::GroupNormImpl(int64_t groups, int64_t channels, double epsilon)
    : num_groups(groups), num_channels(channels), eps(epsilon) {
  if (groups <= 0 || channels % groups != 0) {
    throw InputError("GroupNorm: " + std::to_string(channels) + " channels are not divisible into " +
                     std::to_string(groups) + " groups (norm_num_groups)");
  }
  weight = register_parameter("weight", new_parameter({channels}));
  bias = register_parameter("bias", new_parameter({channels}));
  init_affine(weight, bias);
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
  return torch::group_norm(x, num_groups, weight, bias, eps);
}

LayerNormImpl::LayerNormImpl(int64_t d, double epsilon, bool affine) : dim(d), eps(epsilon) {
  if (affine) {
    weight = register_parameter("weight", new_parameter({d}));
    bias = register_parameter("bias", new_parameter({d}));
    init_affine(weight, bias);
  }
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) { return torch::layer_norm(x, {dim}, weight, bias, eps); }

EmbeddingImpl::EmbeddingImpl(int64_t n, int64_t d) : num_embeddings(n), embedding_dim(d) {
  weight = register_parameter("weight", new_parameter({n, d}));
  if (ParameterInitScope::current() == ParameterInit::Default) {
    torch::NoGradGuard no_grad;
    weight.normal_(0.0, 1.0);
  }
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& indices) { return torch::embedding(weight, indices); }

Activation parse_activation(const std::string& name, const std::string& key) {
  if (name == "silu" || name == "swish") return Activation::SiLU;
  if (name == "gelu") return Activation::GELU;
  if (name == "mish") return Activation::Mish;
  if (name == "relu") return Activation::ReLU;
  throw InputError("config key '" + key + "': unsupported activation '" + name +
                   "' (expected silu, swish, gelu, mish or relu)");
}

torch::Tensor apply_activation(Activation act, const torch::Tensor& x) {
  switch (act) {
    case Activation::SiLU: return torch::silu(x);
    case Activation::GELU: return torch::gelu(x);
    case Activation::Mish: return torch::mish(x);
    case Activation::ReLU: return torch::relu(x);
  }
  return x;
}

AdaptableLayer adaptable_layer(torch::nn::Module& module) {
  AdaptableLayer v;
  if (auto* l = module.as<LinearImpl>()) {
    v = {&l->adapter, l->weight, l->bias};
  } else if (auto* c = module.as<Conv2dImpl>()) {
    v = {&c->adapter, c->weight, c->bias, c->stride, c->padding};
  } else if (auto* n = module.as<repa::nn::LinearImpl>()) {
    v = {&n->adapter, n->weight, n->bias};
  }
  return v;
}

}  // namespace repa::models::diffusers
