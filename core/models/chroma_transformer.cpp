#include "core/models/chroma_transformer.h"

#include <filesystem>
#include <limits>
#include <map>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"
#include "core/models/dit_embeddings.h"
#include "core/models/flux_official_names.h"
#include "core/models/mmdit_layers.h"
#include "core/models/sd3_official_names.h"
#include "core/nn/state_loading.h"

namespace repa::models {

namespace {

const char* const kModel = "ChromaTransformer2DModel";

void require_positive(int64_t value, const std::string& key) {
  if (value <= 0)
    throw InputError(std::string(kModel) + " config: " + key + " must be positive, got " + std::to_string(value));
}

// torch.nn.RMSNorm without an eps uses the machine epsilon of the input's dtype.
double machine_epsilon(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kHalf:
      return 0.0009765625;
    case torch::kBFloat16:
      return 0.0078125;
    case torch::kDouble:
      return std::numeric_limits<double>::epsilon();
    default:
      return static_cast<double>(std::numeric_limits<float>::epsilon());
  }
}

}  // namespace

ChromaTransformerConfig ChromaTransformerConfig::from_json(const nlohmann::json& json) {
  using namespace diffusers;
  if (!json.is_object()) throw InputError(std::string(kModel) + " config: expected a JSON object");
  ChromaTransformerConfig c;
  c.patch_size = config_int(json, "patch_size", c.patch_size);
  c.in_channels = config_int(json, "in_channels", c.in_channels);
  c.out_channels = config_int(json, "out_channels", 0);  // `out_channels or in_channels`
  if (c.out_channels == 0) c.out_channels = c.in_channels;
  c.num_layers = config_int(json, "num_layers", c.num_layers);
  c.num_single_layers = config_int(json, "num_single_layers", c.num_single_layers);
  c.attention_head_dim = config_int(json, "attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = config_int(json, "num_attention_heads", c.num_attention_heads);
  c.joint_attention_dim = config_int(json, "joint_attention_dim", c.joint_attention_dim);
  c.axes_dims_rope = config_ints(json, "axes_dims_rope", c.axes_dims_rope);
  c.approximator_num_channels = config_int(json, "approximator_num_channels", c.approximator_num_channels);
  c.approximator_hidden_dim = config_int(json, "approximator_hidden_dim", c.approximator_hidden_dim);
  c.approximator_layers = config_int(json, "approximator_layers", c.approximator_layers);
  c.validate();
  return c;
}

void ChromaTransformerConfig::validate() const {
  require_positive(patch_size, "patch_size");
  require_positive(in_channels, "in_channels");
  require_positive(out_channels, "out_channels");
  if (num_layers < 0) throw InputError(std::string(kModel) + " config: num_layers must not be negative");
  if (num_single_layers < 0) throw InputError(std::string(kModel) + " config: num_single_layers must not be negative");
  require_positive(joint_attention_dim, "joint_attention_dim");
  require_positive(approximator_hidden_dim, "approximator_hidden_dim");
  if (approximator_layers < 0)
    throw InputError(std::string(kModel) + " config: approximator_layers must not be negative");
  // Four sinusoids of approximator_num_channels / 4 features each make the approximator's input.
  if (approximator_num_channels <= 0 || approximator_num_channels % 4 != 0)
    throw InputError(std::string(kModel) + " config: approximator_num_channels must be a positive multiple of 4 " +
                     "(four sinusoid blocks of a quarter of it feed in_proj), got " +
                     std::to_string(approximator_num_channels));
  validate_flux_layout(kModel, num_attention_heads, attention_head_dim, axes_dims_rope);
}

ChromaApproximatorImpl::ChromaApproximatorImpl(int64_t in_dim, int64_t out_dim, int64_t hidden_dim, int64_t n) {
  in_proj = register_module("in_proj", diffusers::Linear(in_dim, hidden_dim));
  auto layer_list = register_module("layers", torch::nn::ModuleList());
  auto norm_list = register_module("norms", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) {
    layers.push_back(dit::TextProjection(hidden_dim, hidden_dim, 0, "silu"));
    layer_list->push_back(layers.back());
    norms.push_back(dit::RMSNorm(hidden_dim, machine_epsilon(torch::kFloat)));
    norm_list->push_back(norms.back());
  }
  out_proj = register_module("out_proj", diffusers::Linear(hidden_dim, out_dim));
}

torch::Tensor ChromaApproximatorImpl::forward(const torch::Tensor& input) {
  auto x = in_proj(input);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    norms[i]->eps = machine_epsilon(x.scalar_type());
    x = x + layers[i](norms[i](x));
  }
  return out_proj(x);
}

ChromaTransformerImpl::ChromaTransformerImpl(const ChromaTransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim(), channels = config.approximator_num_channels / 4;
  const auto indices = torch::arange(config.modulation_slots(), torch::kLong) * 1000;
  mod_proj = dit::timestep_features(indices, 2 * channels, true, 0);
  distilled_guidance_layer = register_module(
      "distilled_guidance_layer", ChromaApproximator(config.approximator_num_channels, dim,
                                                     config.approximator_hidden_dim, config.approximator_layers));
  context_embedder = register_module("context_embedder", diffusers::Linear(config.joint_attention_dim, dim));
  x_embedder = register_module("x_embedder", diffusers::Linear(config.in_channels, dim));
  auto doubles = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    transformer_blocks.push_back(
        FluxDoubleBlock(dim, config.num_attention_heads, config.attention_head_dim, /*own_modulation=*/false));
    doubles->push_back(transformer_blocks.back());
  }
  auto singles = register_module("single_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    single_transformer_blocks.push_back(
        FluxSingleBlock(dim, config.num_attention_heads, config.attention_head_dim, /*own_modulation=*/false));
    singles->push_back(single_transformer_blocks.back());
  }
  proj_out =
      register_module("proj_out", diffusers::Linear(dim, config.patch_size * config.patch_size * config.out_channels));
}

torch::Tensor ChromaTransformerImpl::modulation_input(const torch::Tensor& timestep) const {
  const int64_t batch = timestep.size(0), channels = config.approximator_num_channels / 4;
  const auto dtype = timestep.scalar_type();
  const auto time = dit::timestep_features(timestep, channels, true, 0).to(dtype);
  // The guidance slot is always the sinusoid of 0: Chroma was distilled without a guidance input.
  const auto guidance = dit::timestep_features(torch::zeros({batch}, timestep.options()), channels, true, 0).to(dtype);
  const int64_t slots = mod_proj.size(0);
  const auto per_sample = torch::cat({time, guidance}, 1).unsqueeze(1).expand({batch, slots, 2 * channels});
  const auto index = mod_proj.to(timestep.device(), dtype).unsqueeze(0).expand({batch, slots, 2 * channels});
  return torch::cat({per_sample, index}, -1);
}

DiTOutput ChromaTransformerImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
                                         const torch::Tensor& timestep, const torch::Tensor& img_ids,
                                         const torch::Tensor& txt_ids, const torch::Tensor& attention_mask,
                                         int64_t tap) {
  check_tap_index(tap, num_double_blocks(), num_single_blocks(), kModel);
  if (!hidden_states.defined() || hidden_states.dim() != 3 || hidden_states.size(2) != config.in_channels)
    throw InputError(std::string(kModel) + ": hidden_states must be packed latents (B, N, " +
                     std::to_string(config.in_channels) + ")");
  if (!encoder_hidden_states.defined() || encoder_hidden_states.dim() != 3 ||
      encoder_hidden_states.size(2) != config.joint_attention_dim)
    throw InputError(std::string(kModel) + ": encoder_hidden_states must be (B, T, " +
                     std::to_string(config.joint_attention_dim) + ")");
  auto x = x_embedder(hidden_states);
  const auto dtype = x.scalar_type();
  const auto pooled_temb = distilled_guidance_layer(modulation_input(timestep.reshape({-1}).to(dtype) * 1000));
  auto context = context_embedder(encoder_hidden_states);
  const int64_t text_len = context.size(1), image_len = x.size(1);
  const auto ids = joint_position_ids(txt_ids, img_ids, static_cast<int64_t>(config.axes_dims_rope.size()), kModel);
  if (ids.size(0) != text_len + image_len)
    throw InputError(std::string(kModel) + ": txt_ids and img_ids hold " + std::to_string(ids.size(0)) +
                     " positions for " + std::to_string(text_len) + " text and " + std::to_string(image_len) +
                     " image tokens");
  const auto rotary = mmdit::rotary_embedding(ids, config.axes_dims_rope, 10000.0);
  if (attention_mask.defined() &&
      (attention_mask.dim() != 2 || attention_mask.size(0) != x.size(0) || attention_mask.size(1) != ids.size(0)))
    throw InputError(std::string(kModel) + ": attention_mask must be (B, T + N) = (" + std::to_string(x.size(0)) +
                     ", " + std::to_string(ids.size(0)) + "), got " + c10::str(attention_mask.sizes()));
  const auto [key_bias, query_keep] = mmdit::joint_mask(attention_mask, dtype);

  DiTOutput out;
  const int64_t image_offset = 3 * config.num_single_layers, text_offset = image_offset + 6 * config.num_layers;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const auto image_mod = pooled_temb.narrow(1, image_offset + 6 * i, 6);
    const auto text_mod = pooled_temb.narrow(1, text_offset + 6 * i, 6);
    std::tie(context, x) = run_double_block(transformer_blocks[static_cast<std::size_t>(i)], checkpoint, x, context,
                                            image_mod, text_mod, rotary, key_bias, query_keep);
    if (i == tap) out.tapped = x;
  }
  auto hidden = torch::cat({context, x}, 1);
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    hidden = run_single_block(single_transformer_blocks[static_cast<std::size_t>(i)], checkpoint, hidden,
                              pooled_temb.narrow(1, 3 * i, 3), rotary, key_bias, query_keep);
    if (config.num_layers + i == tap) out.tapped = hidden.narrow(1, text_len, image_len);
  }
  x = hidden.narrow(1, text_len, image_len);
  // ChromaAdaLayerNormContinuousPruned: the last two slots are shift, then scale.
  const auto shift = pooled_temb.select(1, pooled_temb.size(1) - 2),
             scale = pooled_temb.select(1, pooled_temb.size(1) - 1);
  out.prediction = proj_out(mmdit::norm_modulate(x, shift.to(dtype), scale.to(dtype)));
  return out;
}

void ChromaTransformerImpl::load_weights(const std::string& path) {
  if (std::filesystem::is_directory(path)) return mmdit::load_transformer_weights(*this, path);
  const auto checkpoint = io::SafetensorsCheckpoint::open(path);
  const auto names = checkpoint.names();
  if (is_sd3_official_naming(names))
    throw InputError(path + " holds SD3 tensors (joint_blocks.*): it is not a Chroma transformer");
  if (!is_flux_official_naming(names)) return mmdit::load_transformer_weights(*this, path);
  // An official Chroma single file (Flux block names): its names are mapped to diffusers' first.
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : names) tensors[name] = checkpoint.tensor(name, /*view=*/true);
  nn::load_state(*this, chroma_official_to_diffusers(tensors, path), path);
}

}  // namespace repa::models
