#include "core/models/autoencoder_kl.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/models/diffusers_config.h"
#include "core/models/diffusers_weights.h"

namespace repa::models {

using namespace diffusers;

namespace {

// The VAE's blocks have no time embedding and use eps 1e-6 throughout.
BlockOptions vae_block(const std::string& type, BlockAttention attention, int64_t layers,
                       const AutoencoderKLConfig& c) {
  BlockOptions b;
  b.type = type;
  b.attention = attention;
  b.num_layers = layers;
  b.resnet.temb_channels = 0;
  b.resnet.groups = c.norm_num_groups;
  b.resnet.eps = 1e-6;
  b.resnet.act = parse_activation(c.act_fn, "act_fn");
  b.spatial_head_dim = 0;  // one head over all channels
  return b;
}

BlockAttention encoder_block_attention(const std::string& type, const std::string& key) {
  if (type == "DownEncoderBlock2D") return BlockAttention::None;
  if (type == "AttnDownEncoderBlock2D") return BlockAttention::Spatial;
  throw InputError("config key '" + key + "': unsupported VAE encoder block '" + type +
                   "' (supported: DownEncoderBlock2D, AttnDownEncoderBlock2D)");
}

BlockAttention decoder_block_attention(const std::string& type, const std::string& key) {
  if (type == "UpDecoderBlock2D") return BlockAttention::None;
  if (type == "AttnUpDecoderBlock2D") return BlockAttention::Spatial;
  throw InputError("config key '" + key + "': unsupported VAE decoder block '" + type +
                   "' (supported: UpDecoderBlock2D, AttnUpDecoderBlock2D)");
}

}  // namespace

AutoencoderKLConfig AutoencoderKLConfig::from_json(const nlohmann::json& c) {
  if (!c.is_object()) throw InputError("AutoencoderKL config is not a JSON object");
  AutoencoderKLConfig out;
  out.source = c;
  out.in_channels = config_int(c, "in_channels", 3);
  out.out_channels = config_int(c, "out_channels", 3);
  out.latent_channels = config_int(c, "latent_channels", 4);
  out.down_block_types = config_strings(c, "down_block_types", {"DownEncoderBlock2D"});
  out.up_block_types = config_strings(c, "up_block_types", {"UpDecoderBlock2D"});
  out.block_out_channels = config_ints(c, "block_out_channels", {64});
  out.layers_per_block = config_int(c, "layers_per_block", 1);
  out.act_fn = config_string(c, "act_fn", "silu");
  parse_activation(out.act_fn, "act_fn");
  out.norm_num_groups = config_int(c, "norm_num_groups", 32);
  out.mid_block_add_attention = config_bool(c, "mid_block_add_attention", true);
  out.use_quant_conv = config_bool(c, "use_quant_conv", true);
  out.use_post_quant_conv = config_bool(c, "use_post_quant_conv", true);
  out.scaling_factor = config_double(c, "scaling_factor", 0.18215);
  out.shift_factor = config_double(c, "shift_factor", 0.0);
  const auto n = out.block_out_channels.size();
  if (n == 0) throw InputError("config key 'block_out_channels' is empty");
  if (out.down_block_types.size() != n || out.up_block_types.size() != n) {
    throw InputError("config keys 'down_block_types'/'up_block_types': expected " + std::to_string(n) +
                     " entries each (one per block_out_channels), got " + std::to_string(out.down_block_types.size()) +
                     " and " + std::to_string(out.up_block_types.size()));
  }
  for (std::size_t i = 0; i < n; ++i) {
    encoder_block_attention(out.down_block_types[i], "down_block_types[" + std::to_string(i) + "]");
    decoder_block_attention(out.up_block_types[i], "up_block_types[" + std::to_string(i) + "]");
  }
  return out;
}

VaeEncoderImpl::VaeEncoderImpl(const AutoencoderKLConfig& c) : act(parse_activation(c.act_fn, "act_fn")) {
  const auto& boc = c.block_out_channels;
  const auto n = boc.size();
  conv_in = register_module("conv_in", Conv2d(c.in_channels, boc[0], 3, 1, 1));
  auto list = register_module("down_blocks", torch::nn::ModuleList());
  int64_t output_channel = boc[0];
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t input_channel = output_channel;
    output_channel = boc[i];
    const auto& type = c.down_block_types[i];
    auto options = vae_block(type, encoder_block_attention(type, "down_block_types"), c.layers_per_block, c);
    // The encoder pads right/bottom and convolves without padding (downsample_padding 0).
    down_blocks.push_back(DownBlock(input_channel, output_channel, i + 1 < n, 0, options));
    list->push_back(down_blocks.back());
  }
  mid_block = register_module(
      "mid_block", MidBlock(boc[n - 1], vae_block("UNetMidBlock2D",
                                                  c.mid_block_add_attention ? BlockAttention::Spatial
                                                                            : BlockAttention::None,
                                                  1, c)));
  conv_norm_out = register_module("conv_norm_out", GroupNorm(c.norm_num_groups, boc[n - 1], 1e-6));
  conv_out = register_module("conv_out", Conv2d(boc[n - 1], 2 * c.latent_channels, 3, 1, 1));
}

torch::Tensor VaeEncoderImpl::forward(const torch::Tensor& x) {
  auto h = conv_in(x);
  for (auto& block : down_blocks) h = block->forward(h, {}, {}).first;
  h = mid_block->forward(h, {}, {});
  return conv_out(apply_activation(act, conv_norm_out(h)));
}

VaeDecoderImpl::VaeDecoderImpl(const AutoencoderKLConfig& c) : act(parse_activation(c.act_fn, "act_fn")) {
  const auto& boc = c.block_out_channels;
  const auto n = boc.size();
  conv_in = register_module("conv_in", Conv2d(c.latent_channels, boc[n - 1], 3, 1, 1));
  mid_block = register_module(
      "mid_block", MidBlock(boc[n - 1], vae_block("UNetMidBlock2D",
                                                  c.mid_block_add_attention ? BlockAttention::Spatial
                                                                            : BlockAttention::None,
                                                  1, c)));
  auto list = register_module("up_blocks", torch::nn::ModuleList());
  int64_t output_channel = boc[n - 1];
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t prev_output_channel = output_channel;
    output_channel = boc[n - 1 - i];
    const auto& type = c.up_block_types[i];
    auto options = vae_block(type, decoder_block_attention(type, "up_block_types"), c.layers_per_block + 1, c);
    up_blocks.push_back(UpBlock(prev_output_channel, 0, output_channel, i + 1 < n, false, options));
    list->push_back(up_blocks.back());
  }
  conv_norm_out = register_module("conv_norm_out", GroupNorm(c.norm_num_groups, boc[0], 1e-6));
  conv_out = register_module("conv_out", Conv2d(boc[0], c.out_channels, 3, 1, 1));
}

torch::Tensor VaeDecoderImpl::forward(const torch::Tensor& z) {
  auto h = mid_block->forward(conv_in(z), {}, {});
  std::vector<torch::Tensor> no_skips;
  for (auto& block : up_blocks) h = block->forward(h, no_skips, {}, {});
  return conv_out(apply_activation(act, conv_norm_out(h)));
}

AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLConfig& c) : config(c) {
  encoder = register_module("encoder", VaeEncoder(c));
  decoder = register_module("decoder", VaeDecoder(c));
  if (c.use_quant_conv) {
    quant_conv = register_module("quant_conv", Conv2d(2 * c.latent_channels, 2 * c.latent_channels, 1));
  }
  if (c.use_post_quant_conv) {
    post_quant_conv = register_module("post_quant_conv", Conv2d(c.latent_channels, c.latent_channels, 1));
  }
}

LatentPosterior AutoencoderKLImpl::encode(const torch::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(1) != config.in_channels) {
    throw InputError("AutoencoderKL encode: expected pixels (B, " + std::to_string(config.in_channels) +
                     ", H, W), got a " + std::to_string(pixels.dim()) + "-D tensor");
  }
  auto moments = encoder(pixels);
  if (quant_conv) moments = quant_conv(moments);
  auto parts = moments.chunk(2, 1);
  return {parts[0], torch::clamp(parts[1], -30.0, 20.0)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& latents) {
  if (latents.dim() != 4 || latents.size(1) != config.latent_channels) {
    throw InputError("AutoencoderKL decode: expected latents (B, " + std::to_string(config.latent_channels) +
                     ", h, w), got a " + std::to_string(latents.dim()) + "-D tensor");
  }
  auto z = post_quant_conv ? post_quant_conv(latents) : latents;
  return decoder(z);
}

int64_t AutoencoderKLImpl::downsampling_factor() const {
  return int64_t{1} << (static_cast<int64_t>(config.block_out_channels.size()) - 1);
}

AutoencoderKL load_autoencoder_kl(const std::string& folder) {
  const auto config_path = (std::filesystem::path(folder) / "config.json").string();
  auto config = AutoencoderKLConfig::from_json(read_config_file(config_path));
  const auto weights = io::SafetensorsCheckpoint::open(find_weights_file(folder));
  ParameterInitScope no_init(ParameterInit::Uninitialized);
  AutoencoderKL model(config);
  load_checkpoint(*model, weights);
  return model;
}

}  // namespace repa::models
