#include "core/models/unet_2d.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/models/diffusers_config.h"
#include "core/models/diffusers_weights.h"

namespace repa::models {

using namespace diffusers;

UNet2DConfig UNet2DConfig::from_json(const nlohmann::json& c) {
  if (!c.is_object()) throw InputError("UNet2DModel config is not a JSON object");
  config_require_one_of(c, "time_embedding_type", {"positional"});
  config_require_one_of(c, "downsample_type", {"conv"});
  config_require_one_of(c, "upsample_type", {"conv"});
  config_require_one_of(c, "class_embed_type", {"timestep", "identity"});
  config_require_one_of(c, "resnet_time_scale_shift", {"default", "scale_shift"});

  UNet2DConfig out;
  out.source = c;
  out.sample_size = config_has(c, "sample_size") && c.at("sample_size").is_array() ? 0 : config_int(c, "sample_size", 32);
  out.in_channels = config_int(c, "in_channels", 3);
  out.out_channels = config_int(c, "out_channels", 3);
  out.center_input_sample = config_bool(c, "center_input_sample", false);
  out.flip_sin_to_cos = config_bool(c, "flip_sin_to_cos", true);
  out.freq_shift = config_double(c, "freq_shift", 0.0);
  out.down_block_types = config_strings(
      c, "down_block_types", {"DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"});
  out.up_block_types =
      config_strings(c, "up_block_types", {"AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"});
  out.block_out_channels = config_ints(c, "block_out_channels", {224, 448, 672, 896});
  const auto n = out.block_out_channels.size();
  if (out.down_block_types.size() != n || out.up_block_types.size() != n) {
    throw InputError("config keys 'down_block_types'/'up_block_types': expected " + std::to_string(n) +
                     " entries each (one per block_out_channels), got " + std::to_string(out.down_block_types.size()) +
                     " and " + std::to_string(out.up_block_types.size()));
  }
  for (std::size_t i = 0; i < n; ++i) {
    down_block_attention(out.down_block_types[i], "down_block_types[" + std::to_string(i) + "]");
    up_block_attention(out.up_block_types[i], "up_block_types[" + std::to_string(i) + "]");
  }
  out.layers_per_block = config_int(c, "layers_per_block", 2);
  out.mid_block_scale_factor = config_double(c, "mid_block_scale_factor", 1.0);
  out.downsample_padding = config_int(c, "downsample_padding", 1);
  out.dropout = config_double(c, "dropout", 0.0);
  out.act_fn = config_string(c, "act_fn", "silu");
  parse_activation(out.act_fn, "act_fn");
  out.attention_head_dim = c.contains("attention_head_dim") && c.at("attention_head_dim").is_null()
                               ? 0
                               : config_int(c, "attention_head_dim", 8);
  if (!config_has(c, "norm_num_groups") && c.contains("norm_num_groups")) {
    out.norm_num_groups = std::min<int64_t>(out.block_out_channels[0] / 4, 32);
  } else {
    out.norm_num_groups = config_int(c, "norm_num_groups", 32);
  }
  out.attn_norm_num_groups = config_int(c, "attn_norm_num_groups", 0);
  out.norm_eps = config_double(c, "norm_eps", 1e-5);
  out.resnet_scale_shift = config_string(c, "resnet_time_scale_shift", "default") == "scale_shift";
  out.add_attention = config_bool(c, "add_attention", true);
  out.class_embed_type = config_string(c, "class_embed_type", "");
  out.num_class_embeds = config_int(c, "num_class_embeds", 0);
  return out;
}

UNet2DModelImpl::UNet2DModelImpl(const UNet2DConfig& cfg) : config(cfg) {
  const auto& boc = cfg.block_out_channels;
  const auto act = parse_activation(cfg.act_fn, "act_fn");
  time_embed_dim = boc[0] * 4;
  time_embedding = register_module("time_embedding", TimestepEmbedding(boc[0], time_embed_dim));
  if (cfg.class_embed_type.empty() && cfg.num_class_embeds > 0) {
    class_embedding_table = register_module("class_embedding", Embedding(cfg.num_class_embeds, time_embed_dim));
  } else if (cfg.class_embed_type == "timestep") {
    class_embedding_mlp = register_module("class_embedding", TimestepEmbedding(boc[0], time_embed_dim));
  }

  ResnetOptions resnet;
  resnet.temb_channels = time_embed_dim;
  resnet.groups = cfg.norm_num_groups;
  resnet.eps = cfg.norm_eps;
  resnet.act = act;
  resnet.scale_shift = cfg.resnet_scale_shift;
  resnet.dropout = cfg.dropout;

  const auto n = boc.size();
  auto block = [&](const std::string& type, BlockAttention attention, int64_t layers, int64_t channels) {
    BlockOptions b;
    b.type = type;
    b.attention = attention;
    b.num_layers = layers;
    b.resnet = resnet;
    b.spatial_head_dim = cfg.attention_head_dim > 0 ? cfg.attention_head_dim : channels;
    return b;
  };
  UNetBodySpec s;
  s.in_channels = cfg.in_channels;
  s.out_channels = cfg.out_channels;
  s.block_out_channels = boc;
  s.downsample_padding = cfg.downsample_padding;
  s.norm_num_groups = cfg.norm_num_groups;
  s.norm_eps = cfg.norm_eps;
  s.act = act;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& type = cfg.down_block_types[i];
    s.down.push_back(block(type, down_block_attention(type, "down_block_types"), cfg.layers_per_block, boc[i]));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& type = cfg.up_block_types[i];
    s.up.push_back(
        block(type, up_block_attention(type, "up_block_types"), cfg.layers_per_block + 1, boc[n - 1 - i]));
  }
  s.mid = block("UNetMidBlock2D", cfg.add_attention ? BlockAttention::Spatial : BlockAttention::None, 1, boc[n - 1]);
  s.mid.resnet.output_scale_factor = cfg.mid_block_scale_factor;
  // diffusers gives the mid attention no GroupNorm under scale_shift unless attn_norm_num_groups says so.
  if (cfg.attn_norm_num_groups > 0) {
    s.mid.spatial_norm_groups = cfg.attn_norm_num_groups;
  } else if (cfg.resnet_scale_shift) {
    s.mid.spatial_norm_groups = -1;
  }
  build_body(s);
}

UNetOutput UNet2DModelImpl::forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                                    const torch::Tensor& class_labels) {
  compat::AutocastScope autocast(memory_.autocast_bf16 && sample.is_cuda());
  auto x = prepare_input(sample);
  if (config.center_input_sample) x = 2 * x - 1.0;
  const int64_t batch = x.size(0);
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  if (t.dim() != 1 || (t.size(0) != 1 && t.size(0) != batch)) {
    throw InputError("UNet input 'timestep': expected a scalar or " + std::to_string(batch) + " values");
  }
  if (t.size(0) != batch) t = t.expand({batch});
  const auto& boc = config.block_out_channels;
  auto emb = time_embedding(
      timestep_embedding(t, boc[0], config.flip_sin_to_cos, config.freq_shift).to(x.scalar_type()));
  const bool has_class = class_embedding_table || class_embedding_mlp || config.class_embed_type == "identity";
  if (has_class) {
    if (!class_labels.defined()) {
      throw InputError("UNet input 'class_labels' is required by this config (num_class_embeds/class_embed_type)");
    }
    torch::Tensor class_emb;
    if (class_embedding_table) {
      class_emb = class_embedding_table(class_labels.to(torch::kLong));
    } else if (class_embedding_mlp) {
      class_emb = class_embedding_mlp(
          timestep_embedding(class_labels, boc[0], config.flip_sin_to_cos, config.freq_shift).to(x.scalar_type()));
    } else {
      class_emb = class_labels.to(x.scalar_type());
    }
    emb = emb + class_emb.to(emb.scalar_type());
  } else if (class_labels.defined()) {
    throw InputError("UNet input 'class_labels' given, but the config has no class embedding (num_class_embeds)");
  }
  return run_body(x, emb, torch::Tensor());
}

UNet2DModel load_unet_2d(const std::string& folder) {
  const auto config_path = (std::filesystem::path(folder) / "config.json").string();
  auto config = UNet2DConfig::from_json(read_config_file(config_path));
  const auto weights = io::SafetensorsCheckpoint::open(find_weights_file(folder));
  ParameterInitScope no_init(ParameterInit::Uninitialized);
  UNet2DModel model(config);
  load_checkpoint(*model, weights);
  return model;
}

}  // namespace repa::models
