#include "core/models/unet_2d_condition.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/models/diffusers_config.h"
#include "core/models/diffusers_weights.h"

namespace repa::models {

using namespace diffusers;

namespace {

const std::vector<std::string> kSd15Down = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                            "DownBlock2D"};
const std::vector<std::string> kSd15Up = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                          "CrossAttnUpBlock2D"};

template <typename T>
std::vector<T> reversed(std::vector<T> v) {
  return {v.rbegin(), v.rend()};
}

torch::Tensor batch_timesteps(const torch::Tensor& timestep, int64_t batch) {
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  if (t.dim() != 1 || (t.size(0) != 1 && t.size(0) != batch)) {
    throw InputError("UNet input 'timestep': expected a scalar or " + std::to_string(batch) + " values, got " +
                     std::to_string(t.numel()));
  }
  return t.size(0) == batch ? t : t.expand({batch});
}

}  // namespace

UNet2DConditionConfig UNet2DConditionConfig::from_json(const nlohmann::json& c) {
  if (!c.is_object()) throw InputError("UNet2DConditionModel config is not a JSON object");
  config_require_one_of(c, "time_embedding_type", {"positional"});
  config_require_one_of(c, "dual_cross_attention", {false});
  config_require_one_of(c, "attention_type", {"default"});
  config_require_one_of(c, "time_cond_proj_dim", {});
  config_require_one_of(c, "timestep_post_act", {});
  config_require_one_of(c, "time_embedding_act_fn", {});
  config_require_one_of(c, "resnet_skip_time_act", {false});
  config_require_one_of(c, "resnet_out_scale_factor", {1, 1.0});
  config_require_one_of(c, "cross_attention_norm", {});
  config_require_one_of(c, "mid_block_type", {"UNetMidBlock2DCrossAttn"});
  config_require_one_of(c, "addition_embed_type", {"text_time"});
  config_require_one_of(c, "class_embed_type", {"timestep", "identity", "projection"});
  config_require_one_of(c, "encoder_hid_dim_type", {"text_proj"});
  config_require_one_of(c, "resnet_time_scale_shift", {"default", "scale_shift"});
  config_require_one_of(c, "reverse_transformer_layers_per_block", {});
  if (c.contains("norm_num_groups") && c.at("norm_num_groups").is_null()) {
    throw InputError("config key 'norm_num_groups' = null (no output GroupNorm) is not supported");
  }

  UNet2DConditionConfig out;
  out.source = c;
  out.in_channels = config_int(c, "in_channels", 4);
  out.out_channels = config_int(c, "out_channels", 4);
  out.sample_size = config_int(c, "sample_size", 64);
  out.center_input_sample = config_bool(c, "center_input_sample", false);
  out.flip_sin_to_cos = config_bool(c, "flip_sin_to_cos", true);
  out.freq_shift = config_double(c, "freq_shift", 0.0);
  out.down_block_types = config_strings(c, "down_block_types", kSd15Down);
  out.up_block_types = config_strings(c, "up_block_types", kSd15Up);
  out.block_out_channels = config_ints(c, "block_out_channels", {320, 640, 1280, 1280});
  const auto n = out.block_out_channels.size();
  if (out.down_block_types.size() != n) {
    throw InputError("config key 'down_block_types': expected " + std::to_string(n) +
                     " entries (one per block_out_channels), got " + std::to_string(out.down_block_types.size()));
  }
  if (out.up_block_types.size() != n) {
    throw InputError("config key 'up_block_types': expected " + std::to_string(n) +
                     " entries (one per block_out_channels), got " + std::to_string(out.up_block_types.size()));
  }
  out.layers_per_block = config_per_block_ints(c, "layers_per_block", n, 2);
  out.transformer_layers_per_block = config_per_block_ints(c, "transformer_layers_per_block", n, 1);
  out.cross_attention_dim = config_per_block_ints(c, "cross_attention_dim", n, 1280);
  out.attention_head_dim = config_per_block_ints(c, "attention_head_dim", n, 8);
  // diffusers (up to v0.21 and in every SD config) reads "attention_head_dim" as the number of heads of the
  // cross-attention transformers; "num_attention_heads", where given, says the same thing by its right name.
  out.num_attention_heads = config_has(c, "num_attention_heads")
                                ? config_per_block_ints(c, "num_attention_heads", n, 8)
                                : out.attention_head_dim;
  out.only_cross_attention = config_per_block_bools(c, "only_cross_attention", n, false);
  out.use_linear_projection = config_bool(c, "use_linear_projection", false);
  out.upcast_attention = config_bool(c, "upcast_attention", false);
  out.downsample_padding = config_int(c, "downsample_padding", 1);
  out.mid_block_scale_factor = config_double(c, "mid_block_scale_factor", 1.0);
  out.act_fn = config_string(c, "act_fn", "silu");
  parse_activation(out.act_fn, "act_fn");
  out.norm_num_groups = config_int(c, "norm_num_groups", 32);
  out.norm_eps = config_double(c, "norm_eps", 1e-5);
  out.resnet_scale_shift = config_string(c, "resnet_time_scale_shift", "default") == "scale_shift";
  out.dropout = config_double(c, "dropout", 0.0);
  out.time_embedding_dim = config_int(c, "time_embedding_dim", 0);
  out.conv_in_kernel = config_int(c, "conv_in_kernel", 3);
  out.conv_out_kernel = config_int(c, "conv_out_kernel", 3);
  out.class_embed_type = config_string(c, "class_embed_type", "");
  out.num_class_embeds = config_int(c, "num_class_embeds", 0);
  out.class_embeddings_concat = config_bool(c, "class_embeddings_concat", false);
  out.addition_embed_type = config_string(c, "addition_embed_type", "");
  out.addition_time_embed_dim = config_int(c, "addition_time_embed_dim", 0);
  out.projection_class_embeddings_input_dim = config_int(c, "projection_class_embeddings_input_dim", 0);
  out.encoder_hid_dim = config_int(c, "encoder_hid_dim", 0);

  for (std::size_t i = 0; i < n; ++i) {
    down_block_attention(out.down_block_types[i], "down_block_types[" + std::to_string(i) + "]");
    up_block_attention(out.up_block_types[i], "up_block_types[" + std::to_string(i) + "]");
  }
  if (out.addition_embed_type == "text_time") {
    if (out.addition_time_embed_dim <= 0) {
      throw InputError("config key 'addition_time_embed_dim' must be set when addition_embed_type is text_time");
    }
    if (out.projection_class_embeddings_input_dim <= 0) {
      throw InputError("config key 'projection_class_embeddings_input_dim' must be set when addition_embed_type "
                       "is text_time");
    }
  }
  if (out.class_embed_type == "projection" && out.projection_class_embeddings_input_dim <= 0) {
    throw InputError("config key 'projection_class_embeddings_input_dim' must be set when class_embed_type is "
                     "projection");
  }
  return out;
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConditionConfig& cfg) : config(cfg) {
  const auto& boc = cfg.block_out_channels;
  const auto act = parse_activation(cfg.act_fn, "act_fn");
  time_embed_dim = cfg.time_embedding_dim > 0 ? cfg.time_embedding_dim : boc[0] * 4;
  time_embedding = register_module("time_embedding", TimestepEmbedding(boc[0], time_embed_dim, act));
  if (cfg.encoder_hid_dim > 0) {
    encoder_hid_proj = register_module("encoder_hid_proj", Linear(cfg.encoder_hid_dim, cfg.cross_attention_dim[0]));
  }
  if (cfg.class_embed_type.empty() && cfg.num_class_embeds > 0) {
    class_embedding_table = register_module("class_embedding", Embedding(cfg.num_class_embeds, time_embed_dim));
  } else if (cfg.class_embed_type == "timestep") {
    class_embedding_mlp = register_module("class_embedding", TimestepEmbedding(boc[0], time_embed_dim, act));
  } else if (cfg.class_embed_type == "projection") {
    class_embedding_mlp = register_module(
        "class_embedding", TimestepEmbedding(cfg.projection_class_embeddings_input_dim, time_embed_dim));
  }
  if (cfg.addition_embed_type == "text_time") {
    add_embedding = register_module(
        "add_embedding", TimestepEmbedding(cfg.projection_class_embeddings_input_dim, time_embed_dim));
  }
  const bool has_class = !cfg.class_embed_type.empty() || cfg.num_class_embeds > 0;
  const int64_t block_temb = cfg.class_embeddings_concat && has_class ? 2 * time_embed_dim : time_embed_dim;

  ResnetOptions resnet;
  resnet.temb_channels = block_temb;
  resnet.groups = cfg.norm_num_groups;
  resnet.eps = cfg.norm_eps;
  resnet.act = act;
  resnet.scale_shift = cfg.resnet_scale_shift;
  resnet.dropout = cfg.dropout;

  const auto n = boc.size();
  auto block = [&](const std::string& type, BlockAttention attention, int64_t layers, std::size_t i,
                   bool reversed_lists) {
    const std::size_t k = reversed_lists ? n - 1 - i : i;
    BlockOptions b;
    b.type = type;
    b.attention = attention;
    b.num_layers = layers;
    b.resnet = resnet;
    b.transformer.heads = cfg.num_attention_heads[k];
    b.transformer.num_layers = cfg.transformer_layers_per_block[k];
    b.transformer.cross_attention_dim = cfg.cross_attention_dim[k];
    b.transformer.use_linear_projection = cfg.use_linear_projection;
    b.transformer.only_cross_attention = cfg.only_cross_attention[k];
    b.transformer.upcast_attention = cfg.upcast_attention;
    b.transformer.dropout = cfg.dropout;
    b.spatial_head_dim = cfg.attention_head_dim[k];
    return b;
  };

  UNetBodySpec s;
  s.in_channels = cfg.in_channels;
  s.out_channels = cfg.out_channels;
  s.conv_in_kernel = cfg.conv_in_kernel;
  s.conv_out_kernel = cfg.conv_out_kernel;
  s.block_out_channels = boc;
  s.downsample_padding = cfg.downsample_padding;
  s.norm_num_groups = cfg.norm_num_groups;
  s.norm_eps = cfg.norm_eps;
  s.act = act;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& type = cfg.down_block_types[i];
    s.down.push_back(block(type, down_block_attention(type, "down_block_types"), cfg.layers_per_block[i], i, false));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& type = cfg.up_block_types[i];
    const int64_t layers = cfg.layers_per_block[n - 1 - i] + 1;
    s.up.push_back(block(type, up_block_attention(type, "up_block_types"), layers, i, true));
  }
  s.mid = block("UNetMidBlock2DCrossAttn", BlockAttention::Cross, 1, n - 1, false);
  s.mid.resnet.output_scale_factor = cfg.mid_block_scale_factor;
  s.mid.transformer.only_cross_attention = false;
  build_body(s);
}

torch::Tensor UNet2DConditionModelImpl::time_embedding_of(const torch::Tensor& timestep, int64_t batch,
                                                          torch::Dtype dtype, const UNetConditioning& cond) {
  const auto& boc = config.block_out_channels;
  auto t = batch_timesteps(timestep, batch);
  auto emb = time_embedding(timestep_embedding(t, boc[0], config.flip_sin_to_cos, config.freq_shift).to(dtype));

  if (class_embedding_table || class_embedding_mlp || config.class_embed_type == "identity") {
    if (!cond.class_labels.defined()) {
      throw InputError("UNet input 'class_labels' is required by this config (class_embed_type/num_class_embeds)");
    }
    torch::Tensor class_emb;
    if (class_embedding_table) {
      class_emb = class_embedding_table(cond.class_labels.to(torch::kLong));
    } else if (config.class_embed_type == "timestep") {
      auto labels = timestep_embedding(cond.class_labels, boc[0], config.flip_sin_to_cos, config.freq_shift);
      class_emb = class_embedding_mlp(labels.to(dtype));
    } else if (class_embedding_mlp) {
      class_emb = class_embedding_mlp(cond.class_labels.to(dtype));
    } else {
      class_emb = cond.class_labels.to(dtype);
    }
    emb = config.class_embeddings_concat ? torch::cat({emb, class_emb.to(emb.scalar_type())}, -1)
                                         : emb + class_emb.to(emb.scalar_type());
  }

  if (add_embedding) {
    if (!cond.text_embeds.defined() || !cond.time_ids.defined()) {
      throw InputError("UNet inputs 'text_embeds' and 'time_ids' are required by addition_embed_type text_time");
    }
    auto time_embeds = timestep_embedding(cond.time_ids.flatten(), config.addition_time_embed_dim,
                                          config.flip_sin_to_cos, config.freq_shift)
                           .reshape({cond.text_embeds.size(0), -1});
    auto add = torch::cat({cond.text_embeds.to(torch::kFloat), time_embeds}, -1).to(emb.scalar_type());
    const int64_t expected = config.projection_class_embeddings_input_dim;
    if (add.size(-1) != expected) {
      throw InputError("UNet inputs 'text_embeds' + 'time_ids': " + std::to_string(add.size(-1)) +
                       " features after the time projection, the config's projection_class_embeddings_input_dim "
                       "is " + std::to_string(expected));
    }
    emb = emb + add_embedding(add);
  }
  return emb;
}

UNetOutput UNet2DConditionModelImpl::forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                                             const torch::Tensor& encoder_hidden_states,
                                             const UNetConditioning& conditioning) {
  compat::AutocastScope autocast(memory_.autocast_bf16 && sample.is_cuda());
  auto x = prepare_input(sample);
  if (config.center_input_sample) x = 2 * x - 1.0;
  auto emb = time_embedding_of(timestep, x.size(0), x.scalar_type(), conditioning);
  auto context = encoder_hidden_states;
  if (!context.defined() || context.dim() != 3) {
    throw InputError("UNet input 'encoder_hidden_states': expected (B, T, D), got " +
                     (context.defined() ? std::to_string(context.dim()) + "-D" : std::string("none")));
  }
  if (encoder_hid_proj) context = encoder_hid_proj(context);
  return run_body(x, emb, context);
}

UNet2DConditionModel load_unet_2d_condition(const std::string& folder) {
  const auto config_path = (std::filesystem::path(folder) / "config.json").string();
  return load_unet_2d_condition(folder, UNet2DConditionConfig::from_json(read_config_file(config_path)));
}

UNet2DConditionModel load_unet_2d_condition(const std::string& folder, const UNet2DConditionConfig& config) {
  const auto weights = io::SafetensorsCheckpoint::open(find_weights_file(folder));
  ParameterInitScope no_init(ParameterInit::Uninitialized);
  UNet2DConditionModel model(config);
  load_checkpoint(*model, weights);
  return model;
}

}  // namespace repa::models
