#include "core/models/sit.h"

#include <map>
#include <string>

#include "core/base/error.h"
#include "core/base/torch_compat.h"
#include "core/io/safetensors.h"
#include "core/nn/adaln.h"
#include "core/nn/pos_embed.h"
#include "core/nn/state_loading.h"
#include "core/nn/linear.h"

namespace repa::models {
namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

}  // namespace

SiTConfig SiTConfig::preset(const std::string& size, int64_t patch_size) {
  SiTConfig c;
  c.patch_size = patch_size;
  if (size == "S") {
    c.depth = 12, c.hidden_size = 384, c.num_heads = 6;
  } else if (size == "B") {
    c.depth = 12, c.hidden_size = 768, c.num_heads = 12;
  } else if (size == "L") {
    c.depth = 24, c.hidden_size = 1024, c.num_heads = 16;
  } else if (size == "XL") {
    c.depth = 28, c.hidden_size = 1152, c.num_heads = 16;
  } else {
    throw InputError("studio.sit_size: unknown size \"" + size + "\" (expected S, B, L, XL or custom)");
  }
  if (patch_size != 2 && patch_size != 4 && patch_size != 8)
    throw InputError("studio.patch_size: SiT-" + size + " comes with patch 2, 4 or 8, got " + str(patch_size) +
                     " (use sit_size \"custom\" for other patches)");
  return c;
}

SiTConfig SiTConfig::from_json(const nlohmann::json& config, int64_t input_size, int64_t in_channels,
                               int64_t num_classes) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const auto& studio = config.contains("studio") ? config.at("studio") : kEmpty;
  const std::string size = studio.value("sit_size", std::string("B"));
  const int64_t patch = studio.value("patch_size", int64_t{2});
  SiTConfig c;
  if (size == "custom") {
    c.patch_size = patch;
    c.depth = studio.value("depth", int64_t{12});
    c.hidden_size = studio.value("hidden_size", int64_t{768});
    c.num_heads = studio.value("num_heads", int64_t{12});
  } else {
    c = preset(size, patch);
  }
  c.mlp_ratio = studio.value("mlp_ratio", 4.0);
  c.class_dropout_prob = studio.value("class_dropout_prob", 0.1);
  c.bf16_autocast = config.contains("mixed_precision") && config.at("mixed_precision").is_string() &&
                    config.at("mixed_precision").get<std::string>() == "bf16";
  c.input_size = input_size;
  c.in_channels = in_channels;
  c.num_classes = num_classes;
  c.validate();
  return c;
}

SiTConfig SiTConfig::from_repa_kwargs(const nlohmann::json& kw) {
  SiTConfig c;
  c.input_size = kw.value("input_size", c.input_size);
  c.in_channels = kw.value("in_channels", c.in_channels);
  c.patch_size = kw.value("patch_size", c.patch_size);
  c.depth = kw.value("depth", c.depth);
  c.hidden_size = kw.value("hidden_size", c.hidden_size);
  c.num_heads = kw.value("num_heads", c.num_heads);
  c.mlp_ratio = kw.value("mlp_ratio", c.mlp_ratio);
  c.num_classes = kw.value("num_classes", c.num_classes);
  c.class_dropout_prob = kw.value("class_dropout_prob", c.class_dropout_prob);
  c.learn_sigma = kw.value("learn_sigma", false);
  c.z_dims = kw.value("z_dims", std::vector<int64_t>{});
  c.projector_dim = kw.value("projector_dim", c.projector_dim);
  // REPA's final layer takes decoder_hidden_size inputs; it only runs when that equals hidden_size.
  if (kw.contains("decoder_hidden_size") && kw.at("decoder_hidden_size").get<int64_t>() != c.hidden_size)
    throw InputError("SiT: decoder_hidden_size " + str(kw.at("decoder_hidden_size").get<int64_t>()) +
                     " differs from hidden_size " + str(c.hidden_size) + "; the final layer reads the last block");
  c.validate();
  return c;
}

void SiTConfig::validate() const {
  auto positive = [](const char* key, int64_t v) {
    if (v <= 0) throw InputError(std::string("SiT: ") + key + " must be positive, got " + str(v));
  };
  positive("input_size", input_size);
  positive("in_channels", in_channels);
  positive("patch_size", patch_size);
  positive("depth", depth);
  positive("hidden_size", hidden_size);
  positive("num_heads", num_heads);
  positive("num_classes", num_classes);
  if (input_size % patch_size)
    throw InputError("SiT: latent size " + str(input_size) + " is not divisible by patch_size " + str(patch_size));
  if (hidden_size % num_heads)
    throw InputError("SiT: hidden_size " + str(hidden_size) + " is not divisible by num_heads " + str(num_heads));
  if (hidden_size % 4)
    throw InputError("SiT: hidden_size " + str(hidden_size) + " must be divisible by 4 (2-D sin-cos positions)");
  if (mlp_ratio <= 0) throw InputError("SiT: mlp_ratio must be positive, got " + std::to_string(mlp_ratio));
  if (class_dropout_prob < 0 || class_dropout_prob >= 1)
    throw InputError("SiT: class_dropout_prob must be in [0, 1), got " + std::to_string(class_dropout_prob));
}

int64_t tap_block_from_json(const nlohmann::json& config, const SiTConfig& sit) {
  if (!config.value("crepa_enabled", false)) return -1;
  const int64_t index = config.value("crepa_block_index", int64_t{8});
  if (index < 0 || index >= sit.depth)
    throw InputError("crepa_block_index " + str(index) + " is past the SiT's depth " + str(sit.depth) +
                     " (0-based: 0.." + str(sit.depth - 1) + ")");
  return index;
}

SiTBlockImpl::SiTBlockImpl(int64_t hidden_size, int64_t num_heads, double mlp_ratio) {
  attn = register_module("attn", nn::Attention(hidden_size, num_heads, true));
  mlp = register_module("mlp", nn::Mlp(hidden_size, static_cast<int64_t>(hidden_size * mlp_ratio), true));
  adaLN_modulation = register_module("adaLN_modulation", nn::adaln_modulation(hidden_size, 6));
}

torch::Tensor SiTBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  const auto m = adaLN_modulation->forward(c).chunk(6, -1);  // shift, scale, gate for attention, then MLP
  const int64_t d = x.size(-1);
  auto norm = [d](const torch::Tensor& v) { return torch::layer_norm(v, {d}, {}, {}, 1e-6); };
  const auto h = nn::gated_residual(x, m[2], attn->forward(nn::modulate(norm(x), m[0], m[1])));
  return nn::gated_residual(h, m[5], mlp->forward(nn::modulate(norm(h), m[3], m[4])));
}

SiTFinalLayerImpl::SiTFinalLayerImpl(int64_t hidden_size, int64_t patch_size, int64_t out_channels) {
  linear = register_module("linear", repa::nn::Linear(hidden_size, patch_size * patch_size * out_channels));
  adaLN_modulation = register_module("adaLN_modulation", nn::adaln_modulation(hidden_size, 2));
}

torch::Tensor SiTFinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  const auto m = adaLN_modulation->forward(c).chunk(2, -1);
  return linear->forward(nn::modulate(torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6), m[0], m[1]));
}

SiTImpl::SiTImpl(const SiTConfig& cfg) : config(cfg) {
  config.validate();
  const int64_t d = config.hidden_size;
  x_embedder = register_module("x_embedder", nn::PatchEmbed(config.in_channels, d, config.patch_size));
  t_embedder = register_module("t_embedder", nn::TimestepEmbedder(d, 256));
  y_embedder = register_module("y_embedder", nn::LabelEmbedder(config.num_classes, d, config.class_dropout_prob));
  pos_embed = register_buffer("pos_embed",
                              nn::sincos_2d_position_embedding(d, config.grid_size(), config.grid_size()).unsqueeze(0));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) blocks->push_back(SiTBlock(d, config.num_heads, config.mlp_ratio));
  projectors = register_module("projectors", torch::nn::ModuleList());
  for (const int64_t z_dim : config.z_dims)
    projectors->push_back(torch::nn::Sequential(repa::nn::Linear(d, config.projector_dim), torch::nn::SiLU(),
                                                repa::nn::Linear(config.projector_dim, config.projector_dim),
                                                torch::nn::SiLU(), repa::nn::Linear(config.projector_dim, z_dim)));
  final_layer = register_module("final_layer", SiTFinalLayer(d, config.patch_size, config.out_channels()));
  reset_parameters();
}

void SiTImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
  // The patch convolution is initialised like a linear layer over its flattened kernel.
  auto w = x_embedder->proj->weight;
  w.view({w.size(0), -1}).copy_(torch::nn::init::xavier_uniform_(torch::empty({w.size(0), w[0].numel()})));
  x_embedder->proj->bias.zero_();
  torch::nn::init::normal_(y_embedder->embedding_table->weight, 0.0, 0.02);
  for (const int i : {0, 2}) torch::nn::init::normal_(t_embedder->mlp[i]->as<torch::nn::Linear>()->weight, 0.0, 0.02);
  // adaLN-Zero: every block starts as the identity, and the output starts at zero.
  for (const auto& block : *blocks) {
    auto* b = block->as<SiTBlockImpl>();
    auto* mod = b->adaLN_modulation[1]->as<torch::nn::Linear>();
    mod->weight.zero_(), mod->bias.zero_();
  }
  auto* final_mod = final_layer->adaLN_modulation[1]->as<torch::nn::Linear>();
  final_mod->weight.zero_(), final_mod->bias.zero_();
  final_layer->linear->weight.zero_(), final_layer->linear->bias.zero_();
}

torch::Tensor SiTImpl::unpatchify(const torch::Tensor& tokens) const {
  const int64_t n = tokens.size(0), g = config.grid_size(), p = config.patch_size, c = config.out_channels();
  // (N, h·w, p·p·C) → (N, h, w, p, p, C) → (N, C, h, p, w, p)
  return tokens.reshape({n, g, g, p, p, c}).permute({0, 5, 1, 3, 2, 4}).reshape({n, c, g * p, g * p});
}

SiTOutput SiTImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y, int64_t tap_block,
                           const std::optional<torch::Tensor>& force_drop) {
  if (x.dim() != 4 || x.size(1) != config.in_channels || x.size(2) != config.input_size ||
      x.size(3) != config.input_size)
    throw InputError("SiT: expected latents (N, " + str(config.in_channels) + ", " + str(config.input_size) + ", " +
                     str(config.input_size) + "), got " + c10::str(x.sizes()) +
                     (x.dim() == 4 && (x.size(2) % config.patch_size || x.size(3) % config.patch_size)
                          ? " (not divisible by patch_size " + str(config.patch_size) + ")"
                          : std::string()));
  if (t.dim() != 1 || t.size(0) != x.size(0) || y.dim() != 1 || y.size(0) != x.size(0))
    throw InputError("SiT: t and y must be (N,) with N = " + str(x.size(0)) + ", got t " + c10::str(t.sizes()) +
                     " and y " + c10::str(y.sizes()));
  if (tap_block < -1 || tap_block >= config.depth)
    throw InputError("SiT: block index " + str(tap_block) + " is past the depth " + str(config.depth) +
                     " (0-based: 0.." + str(config.depth - 1) + ", or -1 for none)");

  // Matmuls in bf16 on CUDA when asked; LayerNorm and softmax stay fp32 by autocast's own rules.
  compat::AutocastScope autocast(config.bf16_autocast && x.is_cuda());
  auto h = x_embedder->forward(x) + pos_embed;
  const auto c = t_embedder->forward(t.to(h.scalar_type())) + y_embedder->forward(y, is_training(), force_drop);
  SiTOutput out;
  for (int64_t i = 0; i < config.depth; ++i) {
    h = blocks[i]->as<SiTBlockImpl>()->forward(h, c);
    if (i == tap_block) out.hidden = h;
  }
  out.prediction = unpatchify(final_layer->forward(h, c));
  return out;
}

std::vector<torch::Tensor> SiTImpl::project(const torch::Tensor& hidden) {
  std::vector<torch::Tensor> zs;
  for (const auto& projector : *projectors) zs.push_back(projector->as<torch::nn::Sequential>()->forward(hidden));
  return zs;
}

void load_sit_checkpoint(SiT& model, const std::string& path, const std::string& prefix) {
  const auto checkpoint = io::SafetensorsCheckpoint::open(path);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : checkpoint.names())
    if (name.compare(0, prefix.size(), prefix) == 0)
      tensors[name.substr(prefix.size())] = checkpoint.tensor(name, true);
  nn::StateLoadOptions options;
  if (model->config.z_dims.empty()) options.ignore_unexpected_prefixes.push_back("projectors.");
  nn::load_state(*model, tensors, path, options);
}

}  // namespace repa::models
