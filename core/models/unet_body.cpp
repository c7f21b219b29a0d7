#include "core/models/unet_body.h"

#include "core/base/error.h"

namespace repa::models {

using namespace diffusers;

void UNetBodyImpl::build_body(const UNetBodySpec& s) {
  spec = s;
  const auto& boc = s.block_out_channels;
  const int64_t n = static_cast<int64_t>(boc.size());
  if (n == 0) throw InputError("config key 'block_out_channels' is empty");
  if (static_cast<int64_t>(s.down.size()) != n || static_cast<int64_t>(s.up.size()) != n) {
    throw InputError("config: block_out_channels has " + std::to_string(n) + " entries but down_block_types has " +
                     std::to_string(s.down.size()) + " and up_block_types " + std::to_string(s.up.size()));
  }
  if (s.conv_in_kernel % 2 == 0 || s.conv_out_kernel % 2 == 0) {
    throw InputError("config keys 'conv_in_kernel'/'conv_out_kernel' must be odd");
  }
  conv_in = register_module("conv_in", Conv2d(s.in_channels, boc[0], s.conv_in_kernel, 1, (s.conv_in_kernel - 1) / 2));

  auto down_list = register_module("down_blocks", torch::nn::ModuleList());
  int64_t output_channel = boc[0];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t input_channel = output_channel;
    output_channel = boc[i];
    down_blocks.push_back(DownBlock(input_channel, output_channel, i < n - 1, s.downsample_padding, s.down[i]));
    down_list->push_back(down_blocks.back());
  }

  mid_block = register_module("mid_block", MidBlock(boc[n - 1], s.mid));

  auto up_list = register_module("up_blocks", torch::nn::ModuleList());
  output_channel = boc[n - 1];
  num_upsamplers = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t prev_output_channel = output_channel;
    output_channel = boc[n - 1 - i];
    const int64_t input_channel = boc[std::max<int64_t>(n - 2 - i, 0)];
    const bool add_upsample = i < n - 1;
    if (add_upsample) ++num_upsamplers;
    up_blocks.push_back(UpBlock(input_channel, prev_output_channel, output_channel, add_upsample, true, s.up[i]));
    up_list->push_back(up_blocks.back());
  }

  conv_norm_out = register_module("conv_norm_out", GroupNorm(s.norm_num_groups, boc[0], s.norm_eps));
  conv_out = register_module("conv_out", Conv2d(boc[0], s.out_channels, s.conv_out_kernel, 1, (s.conv_out_kernel - 1) / 2));
}

UNetOutput UNetBodyImpl::run_body(const torch::Tensor& sample, const torch::Tensor& emb, const torch::Tensor& context) {
  // Inputs whose size is not a multiple of the total downsampling need explicit upsample sizes.
  const int64_t factor = int64_t{1} << num_upsamplers;
  const bool explicit_upsample_size = sample.size(-1) % factor != 0 || sample.size(-2) % factor != 0;

  auto h = conv_in(sample);
  std::vector<torch::Tensor> skips{h};
  for (auto& block : down_blocks) {
    auto [out, block_skips] = block->forward(h, emb, context);
    h = out;
    skips.insert(skips.end(), block_skips.begin(), block_skips.end());
  }
  h = mid_block->forward(h, emb, context);
  const auto mid = h;

  for (std::size_t i = 0; i < up_blocks.size(); ++i) {
    auto& block = up_blocks[i];
    std::vector<int64_t> upsample_size;
    const auto used = static_cast<std::size_t>(block->num_resnets());
    if (explicit_upsample_size && i + 1 < up_blocks.size() && skips.size() > used) {
      const auto& next_skip = skips[skips.size() - used - 1];
      upsample_size = {next_skip.size(2), next_skip.size(3)};
    }
    h = block->forward(h, skips, emb, context, upsample_size);
  }
  h = conv_out(apply_activation(spec.act, conv_norm_out(h)));
  return {h.to(torch::kFloat), mid.to(torch::kFloat)};
}

std::vector<int64_t> UNetBodyImpl::mid_block_shape(int64_t batch, int64_t height, int64_t width) const {
  for (const auto& block : down_blocks) {
    if (!block->downsampler) continue;
    // A stride-2 3x3 conv; padding 0 means one extra row/column on the far side (Downsample2D).
    const int64_t pad = block->downsampler->padding;
    const int64_t before = pad, after = pad == 0 ? 1 : pad;
    height = (height + before + after - 3) / 2 + 1;
    width = (width + before + after - 3) / 2 + 1;
  }
  return {batch, mid_block->channels, height, width};
}

void UNetBodyImpl::set_memory_options(const UNetMemoryOptions& options) {
  memory_ = options;
  for (auto& b : down_blocks) b->set_gradient_checkpointing(options.gradient_checkpointing);
  mid_block->set_gradient_checkpointing(options.gradient_checkpointing);
  for (auto& b : up_blocks) b->set_gradient_checkpointing(options.gradient_checkpointing);
  const auto format = options.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(format));
  }
}

torch::Tensor UNetBodyImpl::prepare_input(const torch::Tensor& sample) const {
  if (sample.dim() != 4 || sample.size(1) != spec.in_channels) {
    throw InputError("UNet input 'sample': expected (B, " + std::to_string(spec.in_channels) + ", H, W), got " +
                     std::to_string(sample.dim()) + "-D with " +
                     (sample.dim() > 1 ? std::to_string(sample.size(1)) : std::string("no")) + " channels");
  }
  return memory_.channels_last ? sample.contiguous(torch::MemoryFormat::ChannelsLast) : sample;
}

int64_t UNetBodyImpl::num_parameters() const {
  int64_t total = 0;
  for (const auto& p : parameters()) total += p.numel();
  return total;
}

}  // namespace repa::models
