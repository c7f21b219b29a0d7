// transformers' T5EncoderModel (T5 v1.1, the SD3 / FLUX / PixArt text encoder; v1.0's ReLU FFN too) with
// Hugging Face's parameter names: shared.weight (encoder.embed_tokens.weight is the same tensor),
// encoder.block.N.layer.0.SelfAttention.{q,k,v,o}, encoder.block.0.layer.0.SelfAttention.relative_attention_bias,
// encoder.block.N.layer.0.layer_norm, encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo}, .layer_norm,
// encoder.final_layer_norm.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/nn/linear.h"

namespace repa::text {

struct T5EncoderConfig {
  // transformers' T5Config defaults (t5-small); real configs (T5 v1.1 XXL: d_model 4096, d_ff 10240, 24 layers,
  // 64 heads, gated-gelu) set every one of them.
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t num_heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  std::string dense_act_fn = "relu";  // gelu_new / gelu_pytorch_tanh (tanh GELU), gelu (erf), relu
  bool is_gated_act = false;          // v1.1: wo(act(wi_0 x) * wi_1 x); v1.0: wo(act(wi x))

  // transformers' config.json; feed_forward_proj ("gated-gelu", "relu", ...) sets the two FFN fields, and
  // dense_act_fn / is_gated_act when present override them, as T5Config's extra keys do.
  static T5EncoderConfig from_json(const nlohmann::json& json);
};

struct T5EncoderOutput {
  // num_layers + 1 entries: [0] the embeddings, [i] the output of block i-1 for i < num_layers, and the last
  // one already final-normed (== last_hidden_state), as transformers returns them.
  std::vector<torch::Tensor> hidden_states;
  torch::Tensor last_hidden_state;
};

struct T5LayerNormImpl : torch::nn::Module {
  T5LayerNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // x * rsqrt(mean(x²) + eps) * weight, no mean, no bias
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(T5LayerNorm);

struct T5AttentionImpl : torch::nn::Module {
  T5AttentionImpl(const T5EncoderConfig& config, bool has_relative_attention_bias);
  // position_bias (1 or B, heads, L, L) already holds the padding mask.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);
  // Bidirectional relative-position buckets → bias (1, heads, L, L); only the block that owns the table.
  torch::Tensor compute_bias(int64_t length, const torch::Device& device);
  int64_t heads, d_kv, num_buckets, max_distance;
  repa::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};
};
TORCH_MODULE(T5Attention);

struct T5LayerSelfAttentionImpl : torch::nn::Module {
  T5LayerSelfAttentionImpl(const T5EncoderConfig& config, bool has_relative_attention_bias);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);
  T5Attention SelfAttention{nullptr};
  T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

struct T5DenseActDenseImpl : torch::nn::Module {
  explicit T5DenseActDenseImpl(const T5EncoderConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  std::string activation;
  repa::nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(T5DenseActDense);

struct T5LayerFFImpl : torch::nn::Module {
  explicit T5LayerFFImpl(const T5EncoderConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  T5DenseActDense DenseReluDense{nullptr};
  T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerFF);

struct T5BlockImpl : torch::nn::Module {
  T5BlockImpl(const T5EncoderConfig& config, bool has_relative_attention_bias);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);
  T5LayerSelfAttention self_attention{nullptr};  // registered as layer.0
  T5LayerFF feed_forward{nullptr};               // registered as layer.1
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(T5Block);

struct T5StackImpl : torch::nn::Module {
  explicit T5StackImpl(const T5EncoderConfig& config);
  torch::nn::ModuleList block{nullptr};
  T5LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5Stack);

class T5EncoderModelImpl : public torch::nn::Module {
 public:
  explicit T5EncoderModelImpl(T5EncoderConfig config);
  // input_ids (B, L) int64; attention_mask (B, L) 1 keep / 0 padding (PixArt), or undefined: padding is
  // attended to, as the SD3 and FLUX pipelines call it.
  T5EncoderOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  const T5EncoderConfig& config() const { return config_; }
  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr};

 private:
  T5EncoderConfig config_;
};
TORCH_MODULE(T5EncoderModel);

// Builds the model and loads the named tensors: shared.weight and/or encoder.embed_tokens.weight (either one
// fills the shared table; if both are given they must be equal), everything else by name. InputError naming
// `source` and each missing, unexpected or mis-shaped tensor.
T5EncoderModel load_t5_encoder(const T5EncoderConfig& config, const std::vector<std::string>& names,
                               const std::function<torch::Tensor(const std::string&)>& tensor,
                               const std::string& source);
// A Hugging Face / diffusers text_encoder folder: config.json and (sharded, fp16/bf16) safetensors, in fp32.
T5EncoderModel load_t5_encoder(const std::string& folder);

}  // namespace repa::text
