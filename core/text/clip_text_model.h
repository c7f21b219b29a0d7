// transformers' CLIPTextModel and CLIPTextModelWithProjection (pre-LN CLIP text transformer), with Hugging
// Face's parameter names so that named_parameters() are the checkpoint's keys: text_model.embeddings.*,
// text_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1, mlp.fc2, layer_norm2},
// text_model.final_layer_norm, text_projection (with projection only). SDXL's second encoder (OpenCLIP
// ViT-bigG) ships in this layout too.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/nn/linear.h"

namespace repa::text {

struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";  // quick_gelu | gelu (erf) | gelu_new / gelu_pytorch_tanh (tanh)
  // 2 in every SD/SDXL/SD3/FLUX config: pool at the first maximum id (the eos, highest id of CLIP's vocab);
  // any other value (transformers' default is 49407): pool at the first position holding that id, position 0
  // when a row has none.
  int64_t eos_token_id = 49407;
  bool with_projection = false;  // CLIPTextModelWithProjection: text_embeds = text_projection(pooled)
  int64_t projection_dim = 512;

  // transformers' config.json (a CLIPTextConfig, or a CLIPConfig's text_config); with_projection from
  // "architectures". InputError naming the key for a wrong type or an unsupported activation.
  static ClipTextConfig from_json(const nlohmann::json& json);
};

struct ClipTextOutput {
  // num_hidden_layers + 1 entries, all before the final LayerNorm: [0] the embeddings, [i] the output of layer
  // i-1. Stable Diffusion uses last_hidden_state, SDXL hidden_states[num_layers - 1] ("penultimate"); "clip
  // skip" k picks hidden_states[num_layers - k].
  std::vector<torch::Tensor> hidden_states;
  torch::Tensor last_hidden_state;  // final_layer_norm(hidden_states.back()), (B, L, hidden)
  torch::Tensor pooler_output;      // last_hidden_state at the eos position of each row, (B, hidden)
  torch::Tensor text_embeds;        // text_projection(pooler_output), (B, projection_dim); undefined without
};

struct ClipAttentionImpl : torch::nn::Module {
  ClipAttentionImpl(int64_t hidden, int64_t heads);
  // mask: additive (B or 1, 1, L, L), already holding the causal and padding terms.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  int64_t heads, head_dim;
  repa::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(ClipAttention);

struct ClipMlpImpl : torch::nn::Module {
  ClipMlpImpl(int64_t hidden, int64_t intermediate, std::string activation);
  torch::Tensor forward(const torch::Tensor& x);
  std::string activation;
  repa::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ClipMlp);

struct ClipEncoderLayerImpl : torch::nn::Module {
  explicit ClipEncoderLayerImpl(const ClipTextConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  ClipAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

struct ClipTextEmbeddingsImpl : torch::nn::Module {
  explicit ClipTextEmbeddingsImpl(const ClipTextConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids);  // token + position (0..L-1) embeddings
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(ClipTextEmbeddings);

struct ClipEncoderImpl : torch::nn::Module {
  explicit ClipEncoderImpl(const ClipTextConfig& config);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ClipEncoder);

struct ClipTextTransformerImpl : torch::nn::Module {
  explicit ClipTextTransformerImpl(const ClipTextConfig& config);
  ClipTextEmbeddings embeddings{nullptr};
  ClipEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(ClipTextTransformer);

class ClipTextModelImpl : public torch::nn::Module {
 public:
  explicit ClipTextModelImpl(ClipTextConfig config);

  // input_ids (B, L) int64 with L <= max_position_embeddings; attention_mask (B, L) 1 keep / 0 padding, or
  // undefined (only the causal mask, as SD pipelines call it).
  ClipTextOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  // The positions pooled for each row under config().eos_token_id's rule, (B) int64.
  torch::Tensor eos_positions(const torch::Tensor& input_ids) const;

  const ClipTextConfig& config() const { return config_; }
  ClipTextTransformer text_model{nullptr};
  repa::nn::Linear text_projection{nullptr};  // null without projection

 private:
  ClipTextConfig config_;
};
TORCH_MODULE(ClipTextModel);

// Builds the model and loads the named tensors (HF names; a position_ids buffer is accepted and ignored).
// InputError naming `source` and each missing, unexpected or mis-shaped tensor.
ClipTextModel load_clip_text_model(const ClipTextConfig& config, const std::vector<std::string>& names,
                                   const std::function<torch::Tensor(const std::string&)>& tensor,
                                   const std::string& source);
// A Hugging Face / diffusers text_encoder folder: config.json and (sharded, fp16) safetensors, in fp32.
ClipTextModel load_clip_text_model(const std::string& folder);

}  // namespace repa::text
