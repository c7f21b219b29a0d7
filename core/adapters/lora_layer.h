// One LoRA adapter on one Linear or Conv2d layer, as peft's LoRA layers compute it:
//   y = W x + b + (alpha / r) · B A dropout(x)          (A: r×in, B: out×r; conv: A is r×in×k×k, B out×r×1×1)
// and with DoRA a magnitude vector m rescales each output row by m / ||W + (alpha/r) B A||_row (the norm held
// constant in the backward, as peft does). The base weight is referenced, never copied or trained.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/nn/layer_adapter.h"

namespace repa::adapters {

enum class LoraInit {
  KaimingUniform,  // lora_init_type "default": A ~ kaiming_uniform(a = sqrt(5)) = U(±1/sqrt(fan_in)), B = 0 (peft)
  Gaussian,        // "gaussian": A ~ N(0, (1/r)²), B = 0 (peft's std = 1/r)
};

// SimpleTuner's LoRA options, read once from the resolved config.
struct LoraSettings {
  int64_t rank = 16;
  std::optional<double> alpha;  // lora_alpha; unset means alpha = rank (SimpleTuner's add_lora_adapter)
  double dropout = 0.1;
  LoraInit init = LoraInit::KaimingUniform;
  bool use_dora = false;

  double effective_alpha() const { return alpha ? *alpha : static_cast<double>(rank); }
  double scaling() const { return effective_alpha() / static_cast<double>(rank); }

  // lora_rank, lora_alpha, lora_dropout, lora_init_type, use_dora, lora_type. Values the studio cannot train
  // (lycoris, loftq/olora/pissa) throw InputError naming the key.
  static LoraSettings from_json(const nlohmann::json& config);
};

class LoraLayerImpl : public torch::nn::Module, public repa::nn::LayerAdapter {
 public:
  // base_weight (out, in) for a Linear or (out, in, k, k) for a Conv2d with its stride and padding; `owner` is
  // the wrapped layer, whose train/eval mode switches the dropout.
  LoraLayerImpl(const torch::nn::Module* owner, torch::Tensor base_weight, torch::Tensor base_bias,
                const LoraSettings& settings, int64_t stride = 1, int64_t padding = 0);

  torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& base) override;

  // (alpha / r) · B A in the base weight's shape (without DoRA's rescaling).
  torch::Tensor delta_weight() const;
  // The weight that computes the same output with no adapter: W + ΔW, or with DoRA m / ||W + ΔW|| · (W + ΔW).
  torch::Tensor merged_weight() const;

  bool is_conv() const { return base_weight_.dim() == 4; }
  double scaling() const { return scaling_; }
  // Sets alpha (e.g. from a loaded file) for this layer; the rank is the rows of A.
  void set_alpha(double alpha) { scaling_ = alpha / static_cast<double>(rank()); }
  int64_t rank() const { return lora_A.size(0); }

  torch::Tensor lora_A, lora_B;
  torch::Tensor magnitude;  // DoRA's m: (out,) for Linear, (1, out, 1, 1) for Conv2d (peft's shapes); else undefined

 private:
  torch::Tensor weight_norm(const torch::Tensor& delta) const;  // ||W + ΔW|| per output row, peft's shape
  torch::Tensor lora_branch(const torch::Tensor& h) const;      // B A h (unscaled)
  torch::Tensor base_without_bias(const torch::Tensor& h) const;

  const torch::nn::Module* owner_;
  torch::Tensor base_weight_, base_bias_;
  double scaling_ = 1.0, dropout_ = 0.0;
  int64_t stride_ = 1, padding_ = 0;
};
TORCH_MODULE(LoraLayer);

}  // namespace repa::adapters
