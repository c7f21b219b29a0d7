#include "core/encoders/dinov2.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/nn/cpu_attention.h"
#include "core/nn/linear.h"

namespace repa::encoders {

Dinov2Config Dinov2Config::for_size(const std::string& size, bool registers) {
  Dinov2Config c;
  if (size == "s") {
    c.embed_dim = 384, c.depth = 12, c.num_heads = 6;
  } else if (size == "b") {
    c.embed_dim = 768, c.depth = 12, c.num_heads = 12;
  } else if (size == "l") {
    c.embed_dim = 1024, c.depth = 24, c.num_heads = 16;
  } else if (size == "g") {
    c.embed_dim = 1536, c.depth = 40, c.num_heads = 24;
    c.ffn = FeedForwardKind::SwiGlu;
  } else {
    throw InputError("unknown DINOv2 size '" + size + "' (expected s, b, l or g)");
  }
  c.ffn_hidden = c.ffn == FeedForwardKind::SwiGlu ? swiglu_hidden(4 * c.embed_dim) : 4 * c.embed_dim;
  c.num_register_tokens = registers ? 4 : 0;
  c.interpolate_offset = registers ? 0.0 : 0.1;
  c.interpolate_antialias = registers;
  return c;
}

int64_t Dinov2Config::swiglu_hidden(int64_t mlp_hidden) {
  const auto h = static_cast<int64_t>(static_cast<double>(mlp_hidden) * 2.0 / 3.0);
  return (h + 7) / 8 * 8;
}

std::string Dinov2Config::describe() const {
  std::ostringstream s;
  s << "DINOv2 ViT dim " << embed_dim << ", depth " << depth << ", heads " << num_heads << ", patch "
    << patch_size << ", positions " << position_grid << "x" << position_grid << ", registers "
    << num_register_tokens << ", ffn " << (ffn == FeedForwardKind::SwiGlu ? "swiglu " : "mlp ") << ffn_hidden;
  return s.str();
}

LayerScaleImpl::LayerScaleImpl(int64_t dim) { gamma = register_parameter("gamma", torch::ones({dim})); }

Dinov2AttentionImpl::Dinov2AttentionImpl(int64_t dim, int64_t heads) : num_heads(heads) {
  if (dim % heads != 0)
    throw InputError("DINOv2 width " + std::to_string(dim) + " is not divisible by " + std::to_string(heads) +
                     " heads");
  qkv = register_module("qkv", repa::nn::Linear(dim, 3 * dim));
  proj = register_module("proj", repa::nn::Linear(dim, dim));
}

torch::Tensor Dinov2AttentionImpl::forward(const torch::Tensor& x) {
  const auto b = x.size(0), n = x.size(1), c = x.size(2);
  return proj(repa::nn::packed_self_attention(qkv(x).reshape({b, n, 3, num_heads, c / num_heads})));
}

Dinov2FeedForwardImpl::Dinov2FeedForwardImpl(FeedForwardKind k, int64_t dim, int64_t hidden) : kind(k) {
  if (kind == FeedForwardKind::Mlp) {
    fc1 = register_module("fc1", repa::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", repa::nn::Linear(hidden, dim));
  } else {
    w12 = register_module("w12", repa::nn::Linear(dim, 2 * hidden));
    w3 = register_module("w3", repa::nn::Linear(hidden, dim));
  }
}

torch::Tensor Dinov2FeedForwardImpl::forward(const torch::Tensor& x) {
  if (kind == FeedForwardKind::Mlp) return fc2(torch::gelu(fc1(x)));  // exact (erf) GELU
  auto halves = w12(x).chunk(2, -1);
  return w3(torch::silu(halves[0]) * halves[1]);
}

Dinov2BlockImpl::Dinov2BlockImpl(const Dinov2Config& c) {
  auto ln = torch::nn::LayerNormOptions({c.embed_dim}).eps(c.layer_norm_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", Dinov2Attention(c.embed_dim, c.num_heads));
  ls1 = register_module("ls1", LayerScale(c.embed_dim));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", Dinov2FeedForward(c.ffn, c.embed_dim, c.ffn_hidden));
  ls2 = register_module("ls2", LayerScale(c.embed_dim));
}

torch::Tensor Dinov2BlockImpl::forward(torch::Tensor x) {
  x = x + ls1(attn(norm1(x)));
  return x + ls2(mlp(norm2(x)));
}

PatchEmbedImpl::PatchEmbedImpl(int64_t patch, int64_t dim) : patch_size(patch) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, dim, patch).stride(patch)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(1) != 3)
    throw InputError("DINOv2 expects pixels of shape (B,3,H,W), got " + std::string(c10::str(pixels.sizes())));
  if (pixels.size(2) % patch_size != 0 || pixels.size(3) % patch_size != 0)
    throw InputError("DINOv2 input " + std::to_string(pixels.size(2)) + "x" + std::to_string(pixels.size(3)) +
                     " is not a multiple of the patch size " + std::to_string(patch_size));
  return proj(pixels).flatten(2).transpose(1, 2);
}

Dinov2Impl::Dinov2Impl(const Dinov2Config& c)
    : config_(c), table_h_(c.position_grid), table_w_(c.position_grid) {
  const auto d = c.embed_dim;
  patch_embed = register_module("patch_embed", PatchEmbed(c.patch_size, d));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, d}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, c.position_grid * c.position_grid + 1, d}));
  if (c.num_register_tokens > 0)
    register_tokens = register_parameter("register_tokens", torch::zeros({1, c.num_register_tokens, d}));
  mask_token = register_parameter("mask_token", torch::zeros({1, d}));  // training-only; kept for the names
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(Dinov2Block(c));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(c.layer_norm_eps)));
}

torch::Tensor Dinov2Impl::positional_embedding(int64_t grid_h, int64_t grid_w, torch::Dtype dtype) const {
  // Same shortcut as the official code: the table as is when the patch count matches and the input is square.
  if (grid_h * grid_w == table_h_ * table_w_ && grid_h == grid_w) return pos_embed.to(dtype);
  const auto d = config_.embed_dim;
  auto table = pos_embed.to(torch::kFloat32);
  auto cls_pos = table.index({torch::indexing::Slice(), torch::indexing::Slice(0, 1)});
  auto grid = table.index({torch::indexing::Slice(), torch::indexing::Slice(1)})
                  .reshape({1, table_h_, table_w_, d})
                  .permute({0, 3, 1, 2});
  torch::Tensor resized;
  if (config_.interpolate_offset > 0) {
    // scale_factor = (grid + offset) / M: the output size is floor(M · scale) and the kernel maps
    // coordinates with 1 / scale, exactly as F.interpolate(scale_factor=...) does.
    const double sh = (static_cast<double>(grid_h) + config_.interpolate_offset) / static_cast<double>(table_h_);
    const double sw = (static_cast<double>(grid_w) + config_.interpolate_offset) / static_cast<double>(table_w_);
    const auto oh = static_cast<int64_t>(static_cast<double>(table_h_) * sh);
    const auto ow = static_cast<int64_t>(static_cast<double>(table_w_) * sw);
    resized = config_.interpolate_antialias ? at::_upsample_bicubic2d_aa(grid, {oh, ow}, false, sh, sw)
                                            : at::upsample_bicubic2d(grid, {oh, ow}, false, sh, sw);
  } else {
    resized = config_.interpolate_antialias ? at::_upsample_bicubic2d_aa(grid, {grid_h, grid_w}, false)
                                            : at::upsample_bicubic2d(grid, {grid_h, grid_w}, false);
  }
  if (resized.size(2) != grid_h || resized.size(3) != grid_w)
    throw Error("DINOv2 positional interpolation gave " + std::to_string(resized.size(2)) + "x" +
                std::to_string(resized.size(3)) + " for a " + std::to_string(grid_h) + "x" +
                std::to_string(grid_w) + " patch grid");
  resized = resized.permute({0, 2, 3, 1}).reshape({1, grid_h * grid_w, d});
  return torch::cat({cls_pos, resized}, 1).to(dtype);
}

void Dinov2Impl::resample_position_table(int64_t grid_h, int64_t grid_w) {
  if (grid_h == table_h_ && grid_w == table_w_) return;
  torch::NoGradGuard no_grad;
  const auto d = config_.embed_dim;
  auto table = pos_embed.to(torch::kFloat32);
  auto cls_pos = table.index({torch::indexing::Slice(), torch::indexing::Slice(0, 1)});
  auto grid = table.index({torch::indexing::Slice(), torch::indexing::Slice(1)})
                  .reshape({1, table_h_, table_w_, d})
                  .permute({0, 3, 1, 2});
  auto resized = at::_upsample_bicubic2d_aa(grid, {grid_h, grid_w}, false);
  resized = resized.permute({0, 2, 3, 1}).reshape({1, grid_h * grid_w, d});
  auto replaced = torch::cat({cls_pos, resized}, 1).to(pos_embed.dtype());
  pos_embed.set_data(replaced);
  table_h_ = grid_h;
  table_w_ = grid_w;
}

Dinov2Features Dinov2Impl::forward(const torch::Tensor& pixels) {
  const auto b = pixels.size(0);
  auto x = patch_embed(pixels);
  const auto grid_h = pixels.size(2) / config_.patch_size, grid_w = pixels.size(3) / config_.patch_size;
  x = torch::cat({cls_token.expand({b, -1, -1}).to(x.dtype()), x}, 1);
  x = x + positional_embedding(grid_h, grid_w, x.scalar_type());
  const auto r = config_.num_register_tokens;
  if (r > 0) {
    using torch::indexing::Slice;
    x = torch::cat({x.index({Slice(), Slice(0, 1)}), register_tokens.expand({b, -1, -1}).to(x.dtype()),
                    x.index({Slice(), Slice(1)})},
                   1);
  }
  for (const auto& block : *blocks) x = block->as<Dinov2Block>()->forward(x);
  x = norm(x);
  using torch::indexing::Slice;
  Dinov2Features out;
  out.cls_token = x.index({Slice(), 0});
  out.register_tokens = x.index({Slice(), Slice(1, 1 + r)});
  out.patch_tokens = x.index({Slice(), Slice(1 + r)});
  out.grid_h = grid_h;
  out.grid_w = grid_w;
  return out;
}

void Dinov2Impl::freeze() {
  eval();
  for (auto& p : parameters()) p.set_requires_grad(false);
}

Dinov2 random_dinov2(const Dinov2Config& config, uint64_t seed) {
  Dinov2 model(config);
  auto gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const auto ends_with = [&](const std::string& tail) {
      return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends_with("gamma") || ((ends_with("norm1.weight") || ends_with("norm2.weight") || name == "norm.weight"))) {
      p.fill_(1.0);
    } else if (ends_with(".bias")) {
      p.zero_();
    } else if (name == "cls_token" || name == "register_tokens") {
      p.normal_(0.0, 1e-6, gen);
    } else if (name == "mask_token") {
      p.zero_();
    } else {
      p.normal_(0.0, 0.02, gen);
    }
  }
  return model;
}

}  // namespace repa::encoders
