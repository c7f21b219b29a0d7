#include "core/models/hidream_transformer.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <string>
#include <tuple>

#include "core/base/error.h"
#include "core/models/diffusers_checkpointing.h"
#include "core/models/diffusers_config.h"
#include "core/models/mmdit_layers.h"

namespace repa::models {

namespace {

const char* const kModel = "HiDreamImageTransformer2DModel";

torch::Tensor layer_norm(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6);
}

std::string shape_of(const torch::Tensor& t) {
  return t.defined() ? c10::str(t.sizes()) : std::string("none");
}

// A container module holding one child under `name` (diffusers' HiDreamBlock wrapper, nn.Sequential slots).
template <typename M>
M register_in_holder(torch::nn::Module& parent, const std::string& holder_name, const std::string& name, M child) {
  auto holder = parent.register_module(holder_name, std::make_shared<torch::nn::Module>());
  return holder->register_module(name, child);
}

}  // namespace

HiDreamTransformerConfig HiDreamTransformerConfig::from_diffusers(const nlohmann::json& j) {
  using namespace diffusers;
  if (!j.is_object()) throw InputError(std::string(kModel) + " config: expected a JSON object");
  HiDreamTransformerConfig c;
  for (const char* key : {"patch_size", "caption_channels", "llama_layers"})
    if (!config_has(j, key))
      throw InputError(std::string(kModel) + " config key '" + key + "' is required (diffusers has no usable default)");
  c.patch_size = config_int(j, "patch_size", c.patch_size);
  c.in_channels = config_int(j, "in_channels", c.in_channels);
  c.out_channels = config_has(j, "out_channels") ? config_int(j, "out_channels", c.out_channels) : c.in_channels;
  c.num_layers = config_int(j, "num_layers", c.num_layers);
  c.num_single_layers = config_int(j, "num_single_layers", c.num_single_layers);
  c.attention_head_dim = config_int(j, "attention_head_dim", c.attention_head_dim);
  c.num_attention_heads = config_int(j, "num_attention_heads", c.num_attention_heads);
  c.caption_channels = config_ints(j, "caption_channels", c.caption_channels);
  c.text_emb_dim = config_int(j, "text_emb_dim", c.text_emb_dim);
  c.num_routed_experts = config_int(j, "num_routed_experts", c.num_routed_experts);
  c.num_activated_experts = config_int(j, "num_activated_experts", c.num_activated_experts);
  c.axes_dims_rope = config_ints(j, "axes_dims_rope", c.axes_dims_rope);
  c.max_resolution = config_ints(j, "max_resolution", c.max_resolution);
  c.llama_layers = config_ints(j, "llama_layers", c.llama_layers);
  c.validate();
  return c;
}

void HiDreamTransformerConfig::validate() const {
  const auto fail = [](const std::string& key, const std::string& why) {
    throw InputError(std::string(kModel) + " config key '" + key + "' " + why);
  };
  const auto positive = [&](int64_t v, const char* key) {
    if (v <= 0) fail(key, "must be positive, got " + std::to_string(v));
  };
  positive(patch_size, "patch_size");
  positive(in_channels, "in_channels");
  positive(out_channels, "out_channels");
  positive(attention_head_dim, "attention_head_dim");
  positive(num_attention_heads, "num_attention_heads");
  positive(text_emb_dim, "text_emb_dim");
  if (num_layers < 0) positive(num_layers, "num_layers");
  if (num_single_layers < 0) positive(num_single_layers, "num_single_layers");
  if (num_routed_experts < 0) positive(num_routed_experts, "num_routed_experts");
  if (num_routed_experts > 0 && (num_activated_experts <= 0 || num_activated_experts > num_routed_experts))
    fail("num_activated_experts", "must be 1.." + std::to_string(num_routed_experts) + " (num_routed_experts), got " +
                                      std::to_string(num_activated_experts));
  if (caption_channels.size() != 2) fail("caption_channels", "must list [T5 width, Llama width]");
  positive(caption_channels[0], "caption_channels");
  positive(caption_channels[1], "caption_channels");
  if (max_resolution.size() != 2) fail("max_resolution", "must list [height, width]");
  positive(max_resolution[0], "max_resolution");
  positive(max_resolution[1], "max_resolution");
  if (axes_dims_rope.size() != 3) fail("axes_dims_rope", "must list 3 axes (ids are (0, row, col))");
  int64_t rope = 0;
  for (const auto d : axes_dims_rope) {
    if (d <= 0 || d % 2) fail("axes_dims_rope", "needs positive even sizes, got " + std::to_string(d));
    rope += d;
  }
  if (rope != attention_head_dim && 2 * rope != attention_head_dim)
    fail("axes_dims_rope", "sums to " + std::to_string(rope) +
                               "; the rotary covers the whole head or its first half, " + "so attention_head_dim " +
                               std::to_string(attention_head_dim) + " must be that or twice");
  const auto blocks = static_cast<std::size_t>(num_layers + num_single_layers);
  if (llama_layers.size() != blocks)
    fail("llama_layers", "lists " + std::to_string(llama_layers.size()) + " Llama layers; one per block (" +
                             std::to_string(blocks) + ") is needed");
  for (const auto l : llama_layers)
    if (l < 0) fail("llama_layers", "holds a negative layer index " + std::to_string(l));
}

HiDreamFeedForwardImpl::HiDreamFeedForwardImpl(int64_t dim, int64_t hidden_dim) {
  int64_t hidden = static_cast<int64_t>(2.0 * static_cast<double>(hidden_dim) / 3.0);
  hidden = 256 * ((hidden + 255) / 256);
  w1 = register_module("w1", diffusers::Linear(dim, hidden, false));
  w2 = register_module("w2", diffusers::Linear(hidden, dim, false));
  w3 = register_module("w3", diffusers::Linear(dim, hidden, false));
}

torch::Tensor HiDreamFeedForwardImpl::forward(const torch::Tensor& x) {
  return w2(torch::silu(w1(x)) * w3(x));
}

HiDreamMoEFeedForwardImpl::HiDreamMoEFeedForwardImpl(int64_t dim, int64_t hidden_dim, int64_t routed, int64_t k)
    : activated(k) {
  shared_experts = register_module("shared_experts", HiDreamFeedForward(dim, hidden_dim / 2));
  auto list = register_module("experts", torch::nn::ModuleList());
  for (int64_t i = 0; i < routed; ++i) {
    experts.push_back(HiDreamFeedForward(dim, hidden_dim));
    list->push_back(experts.back());
  }
  auto gate = register_module("gate", std::make_shared<torch::nn::Module>());
  gate_weight = gate->register_parameter("weight", torch::randn({routed, dim}) / std::sqrt(static_cast<double>(dim)));
}

std::pair<torch::Tensor, torch::Tensor> HiDreamMoEFeedForwardImpl::route(const torch::Tensor& tokens) const {
  const auto scores = torch::linear(tokens, gate_weight).softmax(-1);
  const auto [weights, indices] = scores.topk(activated, -1, /*largest=*/true, /*sorted=*/false);
  return {indices, weights};
}

torch::Tensor HiDreamMoEFeedForwardImpl::forward(const torch::Tensor& x) {
  const auto tokens = x.reshape({-1, x.size(-1)});
  const auto [indices, weights] = route(tokens);
  auto routed = torch::zeros_like(tokens);
  for (std::size_t e = 0; e < experts.size(); ++e) {
    const auto chosen = indices.eq(static_cast<int64_t>(e));  // (N, k): at most one hit per token
    const auto rows = chosen.any(1).nonzero().squeeze(1);
    if (rows.numel() == 0) continue;
    const auto weight = (weights * chosen.to(weights.scalar_type())).sum(1).index_select(0, rows).unsqueeze(1);
    routed = routed.index_add(0, rows, experts[e]->forward(tokens.index_select(0, rows)) * weight);
  }
  return routed.view(x.sizes()) + shared_experts(x);
}

HiDreamAttentionImpl::HiDreamAttentionImpl(int64_t dim, int64_t h, int64_t dh, bool single_stream)
    : heads(h), dim_head(dh), single(single_stream) {
  const int64_t inner = h * dh;
  to_q = register_module("to_q", diffusers::Linear(dim, inner));
  to_k = register_module("to_k", diffusers::Linear(inner, inner));
  to_v = register_module("to_v", diffusers::Linear(inner, inner));
  to_out = register_module("to_out", diffusers::Linear(inner, dim));
  q_rms_norm = register_module("q_rms_norm", dit::RMSNorm(inner, 1e-5));
  k_rms_norm = register_module("k_rms_norm", dit::RMSNorm(inner, 1e-5));
  if (!single) {
    to_q_t = register_module("to_q_t", diffusers::Linear(dim, inner));
    to_k_t = register_module("to_k_t", diffusers::Linear(inner, inner));
    to_v_t = register_module("to_v_t", diffusers::Linear(inner, inner));
    to_out_t = register_module("to_out_t", diffusers::Linear(inner, dim));
    q_rms_norm_t = register_module("q_rms_norm_t", dit::RMSNorm(inner, 1e-5));
    k_rms_norm_t = register_module("k_rms_norm_t", dit::RMSNorm(inner, 1e-5));
  }
}

std::pair<torch::Tensor, torch::Tensor> HiDreamAttentionImpl::forward(const torch::Tensor& x,
                                                                      const torch::Tensor& context,
                                                                      const torch::Tensor& key_keep,
                                                                      const torch::Tensor& cos,
                                                                      const torch::Tensor& sin) {
  const int64_t b = x.size(0), n = x.size(1);
  const auto heads_of = [&](const torch::Tensor& t) { return t.view({b, t.size(1), heads, dim_head}); };
  auto q = heads_of(q_rms_norm(to_q(x)).to(x.scalar_type()));
  auto k = heads_of(k_rms_norm(to_k(x)).to(x.scalar_type()));
  auto v = heads_of(to_v(x));
  // The image mask multiplies the keys (a padded key scores 0, it is not removed), as diffusers does.
  if (key_keep.defined()) k = k * key_keep.to(k.scalar_type()).view({b, n, 1, 1});
  if (!single) {
    if (!context.defined()) throw InputError(std::string(kModel) + ": a double-stream block needs the text stream");
    q = torch::cat({q, heads_of(q_rms_norm_t(to_q_t(context)).to(x.scalar_type()))}, 1);
    k = torch::cat({k, heads_of(k_rms_norm_t(to_k_t(context)).to(x.scalar_type()))}, 1);
    v = torch::cat({v, heads_of(to_v_t(context))}, 1);
  }
  const mmdit::Rotary rotary{cos, sin};
  if (cos.size(-1) == dim_head) {
    q = mmdit::apply_rotary(q, rotary);
    k = mmdit::apply_rotary(k, rotary);
  } else {
    // The rotary covers the first half of each head; the second half passes unrotated.
    const auto qh = q.chunk(2, -1), kh = k.chunk(2, -1);
    q = torch::cat({mmdit::apply_rotary(qh[0], rotary), qh[1]}, -1);
    k = torch::cat({mmdit::apply_rotary(kh[0], rotary), kh[1]}, -1);
  }
  const auto attended = dit::multi_head_attention_with_bias(q.flatten(2).contiguous(), k.flatten(2).contiguous(),
                                                            v.flatten(2).contiguous(), heads, {})
                            .to(x.scalar_type());
  if (single) return {to_out(attended), torch::Tensor()};
  return {to_out(attended.narrow(1, 0, n).contiguous()),
          to_out_t(attended.narrow(1, n, attended.size(1) - n).contiguous())};
}

HiDreamBlockImpl::HiDreamBlockImpl(const HiDreamTransformerConfig& c, bool single_stream) : single(single_stream) {
  const int64_t dim = c.inner_dim();
  adaLN_linear = register_in_holder(*this, "adaLN_modulation", "1", diffusers::Linear(dim, (single ? 6 : 12) * dim));
  attn1 = register_module("attn1", HiDreamAttention(dim, c.num_attention_heads, c.attention_head_dim, single));
  if (c.num_routed_experts > 0)
    ff_i_moe =
        register_module("ff_i", HiDreamMoEFeedForward(dim, 4 * dim, c.num_routed_experts, c.num_activated_experts));
  else
    ff_i = register_module("ff_i", HiDreamFeedForward(dim, 4 * dim));
  if (!single) ff_t = register_module("ff_t", HiDreamFeedForward(dim, 4 * dim));
}

torch::Tensor HiDreamBlockImpl::image_feed_forward(const torch::Tensor& x) {
  return ff_i_moe ? ff_i_moe->forward(x) : ff_i->forward(x);
}

std::pair<torch::Tensor, torch::Tensor> HiDreamBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                                                  const torch::Tensor& key_keep,
                                                                  const torch::Tensor& temb, const torch::Tensor& cos,
                                                                  const torch::Tensor& sin) {
  // Image: shift, scale, gate (attention), shift, scale, gate (feed-forward); double blocks repeat them for text.
  const auto m = adaLN_linear(torch::silu(temb)).unsqueeze(1).chunk(single ? 6 : 12, -1);
  const auto modulate = [](const torch::Tensor& t, const torch::Tensor& shift, const torch::Tensor& scale) {
    return layer_norm(t) * (1 + scale) + shift;
  };
  if (single) {
    auto h = m[2] * attn1(modulate(x, m[0], m[1]), torch::Tensor(), key_keep, cos, sin).first + x;
    h = m[5] * image_feed_forward(modulate(h, m[3], m[4])) + h;
    return {h, torch::Tensor()};
  }
  const auto [ai, at] = attn1(modulate(x, m[0], m[1]), modulate(context, m[6], m[7]), key_keep, cos, sin);
  auto h = m[2] * ai + x;
  auto c = m[8] * at + context;
  h = m[5] * image_feed_forward(modulate(h, m[3], m[4])) + h;
  c = m[11] * ff_t(modulate(c, m[9], m[10])) + c;
  return {h, c};
}

HiDreamTransformerImpl::HiDreamTransformerImpl(const HiDreamTransformerConfig& c) : config(c) {
  config.validate();
  const int64_t dim = config.inner_dim(), p = config.patch_size;
  x_embedder = register_in_holder(*this, "x_embedder", "proj", diffusers::Linear(config.in_channels * p * p, dim));
  t_embedder = register_in_holder(*this, "t_embedder", "timestep_embedder", dit::TimestepEmbedding(256, dim));
  p_embedder =
      register_in_holder(*this, "p_embedder", "pooled_embedder", dit::TimestepEmbedding(config.text_emb_dim, dim));
  const auto make_blocks = [&](const std::string& name, std::vector<HiDreamBlock>& blocks, int64_t n, bool single) {
    auto list = register_module(name, torch::nn::ModuleList());
    for (int64_t i = 0; i < n; ++i) {
      auto holder = std::make_shared<torch::nn::Module>();
      blocks.push_back(holder->register_module("block", HiDreamBlock(config, single)));
      list->push_back(holder);
    }
  };
  make_blocks("double_stream_blocks", double_blocks, config.num_layers, false);
  make_blocks("single_stream_blocks", single_blocks, config.num_single_layers, true);
  auto final_layer = register_module("final_layer", std::make_shared<torch::nn::Module>());
  final_adaLN = register_in_holder(*final_layer, "adaLN_modulation", "1", diffusers::Linear(dim, 2 * dim));
  final_linear = final_layer->register_module("linear", diffusers::Linear(dim, p * p * config.out_channels));
  // One Llama projection per block, then the T5 projection last.
  auto projections = register_module("caption_projection", torch::nn::ModuleList());
  const int64_t blocks = config.num_layers + config.num_single_layers;
  for (int64_t i = 0; i <= blocks; ++i) {
    auto holder = std::make_shared<torch::nn::Module>();
    const int64_t in = i < blocks ? config.caption_channels[1] : config.caption_channels[0];
    caption_projection.push_back(holder->register_module("linear", diffusers::Linear(in, dim, false)));
    projections->push_back(holder);
  }
}

std::string HiDreamTransformerImpl::simpletuner_tap_difference(int64_t tap) const {
  if (tap < config.num_layers) return {};
  return "crepa_block_index " + std::to_string(tap) + " is single-stream block " +
         std::to_string(tap - config.num_layers) + " of " + std::string(kModel) +
         ": SimpleTuner stores the text tokens there (it cuts [:, image_len:] from the image-first sequence); this " +
         "model taps the image tokens, so its REPA loss differs from SimpleTuner's at this index (double-stream " +
         "blocks 0.." + std::to_string(config.num_layers - 1) + " match)";
}

DiTOutput HiDreamTransformerImpl::forward(const HiDreamInputs& in, int64_t tap) {
  const int64_t n_double = config.num_layers, n_single = config.num_single_layers;
  check_tap_index(tap, n_double, n_single, std::string(kModel) + " (double_stream_blocks, then single_stream_blocks)");
  if (tap >= n_double && !warned_tap_) {
    spdlog::warn("{}", simpletuner_tap_difference(tap));
    warned_tap_ = true;
  }
  const auto& x = in.hidden_states;
  if (!x.defined() || x.dim() != 4 || x.size(1) != config.in_channels)
    throw InputError(std::string(kModel) + ": hidden_states must be (B, " + std::to_string(config.in_channels) +
                     ", H, W), got " + shape_of(x));
  const int64_t batch = x.size(0), p = config.patch_size, height = x.size(2), width = x.size(3);
  if (height % p || width % p)
    throw InputError(std::string(kModel) + ": hidden_states " + std::to_string(height) + "x" + std::to_string(width) +
                     " is not divisible by patch_size " + std::to_string(p));
  const auto& t5 = in.encoder_hidden_states_t5;
  const auto& llama = in.encoder_hidden_states_llama3;
  if (!t5.defined() || t5.dim() != 3 || t5.size(0) != batch || t5.size(2) != config.caption_channels[0])
    throw InputError(std::string(kModel) + ": encoder_hidden_states_t5 must be (B, T, " +
                     std::to_string(config.caption_channels[0]) + "), got " + shape_of(t5));
  if (!llama.defined() || llama.dim() != 4 || llama.size(1) != batch || llama.size(3) != config.caption_channels[1])
    throw InputError(std::string(kModel) + ": encoder_hidden_states_llama3 must be (layers, B, T, " +
                     std::to_string(config.caption_channels[1]) + "), got " + shape_of(llama));
  for (const auto l : config.llama_layers)
    if (l >= llama.size(0))
      throw InputError(std::string(kModel) + ": config key 'llama_layers' names layer " + std::to_string(l) +
                       ", but encoder_hidden_states_llama3 holds " + std::to_string(llama.size(0)) + " layers");
  if (!in.pooled_embeds.defined() || in.pooled_embeds.dim() != 2 || in.pooled_embeds.size(0) != batch ||
      in.pooled_embeds.size(1) != config.text_emb_dim)
    throw InputError(std::string(kModel) + ": pooled_embeds must be (B, " + std::to_string(config.text_emb_dim) +
                     "), got " + shape_of(in.pooled_embeds));
  if (!in.timesteps.defined() || in.timesteps.numel() != batch)
    throw InputError(std::string(kModel) + ": timesteps must hold one value per sample");

  // Patches (B, h·w, p·p·C) flattened (p_h, p_w, C); latents that are not square are padded to max_seq tokens.
  const int64_t grid_h = height / p, grid_w = width / p, n_image = grid_h * grid_w;
  auto patches = x.reshape({batch, config.in_channels, grid_h, p, grid_w, p})
                     .permute({0, 2, 4, 3, 5, 1})
                     .reshape({batch, n_image, p * p * config.in_channels});
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  auto img_ids = torch::stack(
      {torch::zeros({n_image}, long_options), torch::arange(grid_h, long_options).repeat_interleave(grid_w),
       torch::arange(grid_w, long_options).repeat({grid_h})},
      1);
  torch::Tensor keep;
  if (height != width) {
    const int64_t max_seq = config.max_seq();
    if (n_image > max_seq)
      throw InputError(std::string(kModel) + ": a " + std::to_string(grid_h) + "x" + std::to_string(grid_w) +
                       " token grid exceeds the " + std::to_string(max_seq) +
                       " tokens of config key 'max_resolution' that non-square latents are padded to");
    patches = torch::cat({patches, torch::zeros({batch, max_seq - n_image, patches.size(2)}, patches.options())}, 1);
    img_ids = torch::cat({img_ids, torch::zeros({max_seq - n_image, 3}, long_options)}, 0);
    keep = torch::arange(max_seq, long_options).lt(n_image).to(x.scalar_type()).unsqueeze(0).expand({batch, -1});
  }
  auto h = x_embedder(patches);
  const int64_t image_len = h.size(1);

  const auto temb = t_embedder(dit::timestep_features(in.timesteps.reshape({-1}), 256, true, 0.0).to(x.scalar_type())) +
                    p_embedder(in.pooled_embeds);

  const int64_t blocks = n_double + n_single;
  std::vector<torch::Tensor> llama_states;
  for (int64_t i = 0; i < blocks; ++i)
    llama_states.push_back(
        caption_projection[static_cast<std::size_t>(i)](llama[config.llama_layers[static_cast<std::size_t>(i)]]));
  const auto t5_states = caption_projection.back()(t5);

  // Text ids are zeros: the rotary leaves text tokens unrotated. The table spans [image, T5, last Llama, Llama].
  const int64_t text_len = t5_states.size(1) + 2 * llama.size(2);
  const auto ids = torch::cat({img_ids, torch::zeros({text_len, 3}, long_options)}, 0);
  const auto rotary = mmdit::rotary_embedding(ids, config.axes_dims_rope, 10000.0);

  DiTOutput out;
  const bool checkpoint = diffusers::checkpointing_active(*this, gradient_checkpointing);
  const auto keep_or_empty = [&](const torch::Tensor& k) { return k.defined() ? k : torch::empty({0}, h.options()); };
  auto initial = torch::cat({t5_states, llama_states.back()}, 1);
  const int64_t initial_len = initial.size(1);
  for (int64_t i = 0; i < n_double; ++i) {
    auto& block = double_blocks[static_cast<std::size_t>(i)];
    const auto text = torch::cat({initial, llama_states[static_cast<std::size_t>(i)]}, 1);
    torch::Tensor text_out;
    if (checkpoint) {
      // One output tensor per checkpoint: [image, text] joined along the tokens, split after.
      const auto both = diffusers::checkpointed(
          [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
            const auto [a, b] = impl->forward(v[0], v[1], mmdit::defined_or_none(v[2]), v[3], v[4], v[5]);
            return torch::cat({a, b}, 1);
          },
          {h, text, keep_or_empty(keep), temb, rotary.cos, rotary.sin}, diffusers::trainable_parameters(*block));
      text_out = both.narrow(1, image_len, both.size(1) - image_len);
      h = both.narrow(1, 0, image_len);
    } else {
      std::tie(h, text_out) = block->forward(h, text, keep, temb, rotary.cos, rotary.sin);
    }
    initial = text_out.narrow(1, 0, initial_len);
    if (i == tap) out.tapped = h;  // padded latents keep their padding rows, as SimpleTuner stores them
  }

  auto sequence = torch::cat({h, initial}, 1);
  const int64_t sequence_len = sequence.size(1);
  torch::Tensor sequence_keep;
  if (keep.defined())
    sequence_keep = torch::cat({keep, torch::ones({batch, text_len}, keep.options())}, 1);  // [image, text]
  for (int64_t i = 0; i < n_single; ++i) {
    auto& block = single_blocks[static_cast<std::size_t>(i)];
    const auto joined = torch::cat({sequence, llama_states[static_cast<std::size_t>(n_double + i)]}, 1);
    if (checkpoint) {
      sequence = diffusers::checkpointed(
          [impl = block.ptr()](const std::vector<torch::Tensor>& v) {
            return impl->forward(v[0], torch::Tensor(), mmdit::defined_or_none(v[1]), v[2], v[3], v[4]).first;
          },
          {joined, keep_or_empty(sequence_keep), temb, rotary.cos, rotary.sin},
          diffusers::trainable_parameters(*block));
    } else {
      sequence = block->forward(joined, torch::Tensor(), sequence_keep, temb, rotary.cos, rotary.sin).first;
    }
    sequence = sequence.narrow(1, 0, sequence_len);
    // The image tokens lead the sequence (SimpleTuner stores the text after them here; see the header).
    if (n_double + i == tap) out.tapped = sequence.narrow(1, 0, image_len);
  }
  h = sequence.narrow(1, 0, n_image);

  const auto shift_scale = final_adaLN(torch::silu(temb)).chunk(2, 1);
  h = final_linear(layer_norm(h) * (1 + shift_scale[1].unsqueeze(1)) + shift_scale[0].unsqueeze(1));
  out.prediction = h.reshape({batch, grid_h, grid_w, p, p, config.out_channels})
                       .permute({0, 5, 1, 3, 2, 4})
                       .reshape({batch, config.out_channels, height, width});
  return out;
}

}  // namespace repa::models
