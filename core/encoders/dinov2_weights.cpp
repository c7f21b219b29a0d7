#include "core/encoders/dinov2_weights.h"

#include <filesystem>
#include <regex>
#include <set>
#include <vector>

#include "core/base/error.h"
#include "core/io/safetensors.h"

namespace repa::encoders {
namespace {

std::string shape_string(at::IntArrayRef shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Hugging Face prefixes a backbone inside task models (Dinov2ForImageClassification) with "dinov2.".
constexpr const char* kHfTaskPrefix = "dinov2.";

std::string strip_prefix(const std::string& name, const std::string& prefix) {
  return name.compare(0, prefix.size(), prefix) == 0 ? name.substr(prefix.size()) : name;
}

// One hub tensor and the file's tensor(s) it is made of.
struct HubTensor {
  torch::Tensor value;
  std::vector<std::string> file_names;
};

// Maps a checkpoint onto hub names; q/k/v of the Hugging Face layout are stacked into the fused qkv rows in
// that order, as the hub attention splits them.
std::map<std::string, HubTensor> to_hub_names(const Dinov2StateDict& state, Dinov2Naming naming) {
  std::map<std::string, HubTensor> hub;
  if (naming == Dinov2Naming::TorchHub) {
    for (const auto& [name, t] : state.tensors) hub[name] = {t, {name}};
    return hub;
  }
  static const std::regex qkv_re(R"(^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$)");
  std::map<std::string, std::map<std::string, std::pair<std::string, torch::Tensor>>> qkv_parts;
  for (const auto& [file_name, t] : state.tensors) {
    const auto name = strip_prefix(file_name, kHfTaskPrefix);
    std::smatch m;
    if (std::regex_match(name, m, qkv_re)) {
      qkv_parts["blocks." + m[1].str() + ".attn.qkv." + m[3].str()][m[2].str()] = {file_name, t};
      continue;
    }
    const auto hub_name = hub_name_of(name);
    if (!hub_name.empty()) hub[hub_name] = {t, {file_name}};
  }
  for (auto& [hub_name, parts] : qkv_parts) {
    HubTensor fused;
    std::vector<torch::Tensor> pieces;
    for (const char* role : {"query", "key", "value"}) {
      auto it = parts.find(role);
      if (it == parts.end()) {
        const auto& [some_file_name, unused] = parts.begin()->second;
        (void)unused;
        const auto missing = std::regex_replace(some_file_name, std::regex(R"((query|key|value)\.)"),
                                                std::string(role) + ".");
        throw InputError("DINOv2 weights " + state.source + ": tensor '" + missing + "' is missing (its block has " +
                         parts.begin()->first + " but not " + role + ")");
      }
      fused.file_names.push_back(it->second.first);
      pieces.push_back(it->second.second);
    }
    for (std::size_t i = 1; i < pieces.size(); ++i)
      if (pieces[i].sizes() != pieces[0].sizes())
        throw InputError("DINOv2 weights " + state.source + ": tensor '" + fused.file_names[i] + "' has shape " +
                         shape_string(pieces[i].sizes()) + " but '" + fused.file_names[0] + "' has " +
                         shape_string(pieces[0].sizes()));
    fused.value = torch::cat(pieces, 0);
    hub[hub_name] = std::move(fused);
  }
  return hub;
}

const torch::Tensor& require(const std::map<std::string, HubTensor>& hub, const std::string& hub_name,
                             const std::string& shown_name, const std::string& source) {
  auto it = hub.find(hub_name);
  if (it == hub.end())
    throw InputError("DINOv2 weights " + source + ": tensor '" + shown_name +
                     "' is missing (not a DINOv2 checkpoint, or a truncated conversion?)");
  return it->second.value;
}

// The name a hub tensor has in the file's own naming, for messages.
std::string shown(const std::string& hub_name, Dinov2Naming naming) {
  if (naming == Dinov2Naming::TorchHub) return hub_name;
  static const std::vector<std::pair<std::regex, std::string>> back = {
      {std::regex(R"(^cls_token$)"), "embeddings.cls_token"},
      {std::regex(R"(^mask_token$)"), "embeddings.mask_token"},
      {std::regex(R"(^pos_embed$)"), "embeddings.position_embeddings"},
      {std::regex(R"(^register_tokens$)"), "embeddings.register_tokens"},
      {std::regex(R"(^patch_embed\.proj\.)"), "embeddings.patch_embeddings.projection."},
      {std::regex(R"(^norm\.)"), "layernorm."},
      {std::regex(R"(^blocks\.(\d+)\.attn\.qkv\.(\w+)$)"), "encoder.layer.$1.attention.attention.{query,key,value}.$2"},
      {std::regex(R"(^blocks\.(\d+)\.attn\.proj\.)"), "encoder.layer.$1.attention.output.dense."},
      {std::regex(R"(^blocks\.(\d+)\.ls1\.gamma$)"), "encoder.layer.$1.layer_scale1.lambda1"},
      {std::regex(R"(^blocks\.(\d+)\.ls2\.gamma$)"), "encoder.layer.$1.layer_scale2.lambda1"},
      {std::regex(R"(^blocks\.(\d+)\.mlp\.w12\.)"), "encoder.layer.$1.mlp.weights_in."},
      {std::regex(R"(^blocks\.(\d+)\.mlp\.w3\.)"), "encoder.layer.$1.mlp.weights_out."},
      {std::regex(R"(^blocks\.(\d+)\.)"), "encoder.layer.$1."},
  };
  for (const auto& [re, replacement] : back)
    if (std::regex_search(hub_name, re)) return std::regex_replace(hub_name, re, replacement);
  return hub_name;
}

}  // namespace

std::string hub_name_of(const std::string& hf_name) {
  static const std::vector<std::pair<std::regex, std::string>> table = {
      {std::regex(R"(^embeddings\.cls_token$)"), "cls_token"},
      {std::regex(R"(^embeddings\.mask_token$)"), "mask_token"},
      {std::regex(R"(^embeddings\.position_embeddings$)"), "pos_embed"},
      {std::regex(R"(^embeddings\.register_tokens$)"), "register_tokens"},
      {std::regex(R"(^embeddings\.patch_embeddings\.projection\.(weight|bias)$)"), "patch_embed.proj.$1"},
      {std::regex(R"(^layernorm\.(weight|bias)$)"), "norm.$1"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$)"),
       "blocks.$1.attn.qkv.$3"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$)"), "blocks.$1.attn.proj.$2"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.layer_scale1\.lambda1$)"), "blocks.$1.ls1.gamma"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.layer_scale2\.lambda1$)"), "blocks.$1.ls2.gamma"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.(norm1|norm2)\.(weight|bias)$)"), "blocks.$1.$2.$3"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$)"), "blocks.$1.mlp.$2.$3"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.mlp\.weights_in\.(weight|bias)$)"), "blocks.$1.mlp.w12.$2"},
      {std::regex(R"(^encoder\.layer\.(\d+)\.mlp\.weights_out\.(weight|bias)$)"), "blocks.$1.mlp.w3.$2"},
  };
  const auto name = strip_prefix(hf_name, kHfTaskPrefix);
  for (const auto& [re, replacement] : table)
    if (std::regex_match(name, re)) return std::regex_replace(name, re, replacement);
  return "";
}

Dinov2Naming detect_naming(const Dinov2StateDict& state) {
  const auto has = [&](const std::string& n) { return state.tensors.count(n) != 0; };
  if (has("embeddings.patch_embeddings.projection.weight") ||
      has(std::string(kHfTaskPrefix) + "embeddings.patch_embeddings.projection.weight"))
    return Dinov2Naming::HuggingFace;
  if (has("patch_embed.proj.weight")) return Dinov2Naming::TorchHub;
  throw InputError("DINOv2 weights " + state.source +
                   ": neither 'embeddings.patch_embeddings.projection.weight' (Hugging Face naming) nor "
                   "'patch_embed.proj.weight' (torch.hub naming) is present; not a DINOv2 checkpoint");
}

Dinov2Config infer_dinov2_config(const Dinov2StateDict& state, const Dinov2LoadOptions& options) {
  const auto naming = detect_naming(state);
  const auto hub = to_hub_names(state, naming);
  const auto& src = state.source;
  const auto get = [&](const std::string& n) -> const torch::Tensor& { return require(hub, n, shown(n, naming), src); };
  const auto bad = [&](const std::string& n, const torch::Tensor& t, const std::string& want) {
    return InputError("DINOv2 weights " + src + ": tensor '" + shown(n, naming) + "' has shape " +
                      shape_string(t.sizes()) + ", expected " + want);
  };

  Dinov2Config c;
  const auto& patch = get("patch_embed.proj.weight");
  if (patch.dim() != 4 || patch.size(1) != 3 || patch.size(2) != patch.size(3))
    throw bad("patch_embed.proj.weight", patch, "[D, 3, p, p]");
  c.embed_dim = patch.size(0);
  c.patch_size = patch.size(2);

  const auto& pos = get("pos_embed");
  if (pos.dim() != 3 || pos.size(0) != 1) throw bad("pos_embed", pos, "[1, 1 + M*M, D]");
  const int64_t n = pos.size(1) - 1;
  c.position_grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (c.position_grid * c.position_grid != n)
    throw bad("pos_embed", pos, "[1, 1 + M*M, D] with a square grid of positions");

  if (hub.count("register_tokens")) {
    const auto& reg = hub.at("register_tokens").value;
    if (reg.dim() != 3) throw bad("register_tokens", reg, "[1, R, D]");
    c.num_register_tokens = reg.size(1);
  }
  int64_t depth = 0;
  while (hub.count("blocks." + std::to_string(depth) + ".norm1.weight")) ++depth;
  if (depth == 0)
    throw InputError("DINOv2 weights " + src + ": no transformer blocks (tensor '" +
                     shown("blocks.0.norm1.weight", naming) + "' is missing)");
  c.depth = depth;

  if (hub.count("blocks.0.mlp.w12.weight")) {
    c.ffn = FeedForwardKind::SwiGlu;
    const auto& w3 = get("blocks.0.mlp.w3.weight");
    if (w3.dim() != 2) throw bad("blocks.0.mlp.w3.weight", w3, "[D, hidden]");
    c.ffn_hidden = w3.size(1);
  } else {
    const auto& fc1 = get("blocks.0.mlp.fc1.weight");
    if (fc1.dim() != 2) throw bad("blocks.0.mlp.fc1.weight", fc1, "[hidden, D]");
    c.ffn_hidden = fc1.size(0);
  }

  // Heads are not stored; the released models all use 64-wide heads.
  c.num_heads = options.num_heads.value_or(c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 1);
  const bool registers = c.num_register_tokens > 0;
  c.interpolate_offset = options.interpolate_offset.value_or(registers ? 0.0 : 0.1);
  c.interpolate_antialias = options.interpolate_antialias.value_or(registers);
  return c;
}

Dinov2 load_dinov2(const Dinov2StateDict& state, const Dinov2LoadOptions& options) {
  const auto naming = detect_naming(state);
  Dinov2Config config;
  if (options.expected) {
    config = *options.expected;
    if (options.num_heads) config.num_heads = *options.num_heads;
    if (options.interpolate_offset) config.interpolate_offset = *options.interpolate_offset;
    if (options.interpolate_antialias) config.interpolate_antialias = *options.interpolate_antialias;
  } else {
    config = infer_dinov2_config(state, options);
  }
  const auto hub = to_hub_names(state, naming);
  Dinov2 model(config);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const auto& name = item.key();
    auto& param = item.value();
    const auto& t = require(hub, name, shown(name, naming), state.source);
    if (t.sizes() != param.sizes())
      throw InputError("DINOv2 weights " + state.source + ": tensor '" + shown(name, naming) + "' has shape " +
                       shape_string(t.sizes()) + ", expected " + shape_string(param.sizes()) + " for " +
                       config.describe());
    if (!t.is_floating_point())
      throw InputError("DINOv2 weights " + state.source + ": tensor '" + shown(name, naming) +
                       "' is not a floating-point tensor");
    param.copy_(t);
  }
  if (hub.count("register_tokens") && config.num_register_tokens == 0)
    throw InputError("DINOv2 weights " + state.source + ": tensor '" + shown("register_tokens", naming) +
                     "' is present but " + config.describe() + " has no register tokens");
  // A deeper checkpoint than the expected architecture is a mismatch too.
  const auto extra = "blocks." + std::to_string(config.depth) + ".norm1.weight";
  if (hub.count(extra))
    throw InputError("DINOv2 weights " + state.source + ": tensor '" + shown(extra, naming) +
                     "' is present but " + config.describe() + " has only " + std::to_string(config.depth) +
                     " blocks");
  model->freeze();
  return model;
}

Dinov2 load_dinov2_file(const std::string& path, const Dinov2LoadOptions& options) {
  if (!std::filesystem::exists(path)) throw InputError("DINOv2 weights file not found: " + path);
  const auto checkpoint = io::SafetensorsCheckpoint::open(path);
  Dinov2StateDict state;
  state.source = path;
  for (const auto& name : checkpoint.names()) state.tensors[name] = checkpoint.tensor(name, /*view=*/true);
  return load_dinov2(state, options);
}

void save_dinov2(const std::string& path, Dinov2& model, Dinov2Naming naming) {
  io::NamedTensors out;
  const auto params = model->named_parameters();
  if (naming == Dinov2Naming::TorchHub) {
    for (const auto& item : params) out.emplace_back(item.key(), item.value().detach().cpu());
  } else {
    static const std::regex qkv_re(R"(^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$)");
    for (const auto& item : params) {
      const auto& name = item.key();
      auto t = item.value().detach().cpu();
      std::smatch m;
      if (std::regex_match(name, m, qkv_re)) {
        auto parts = t.chunk(3, 0);
        const char* roles[] = {"query", "key", "value"};
        for (int i = 0; i < 3; ++i)
          out.emplace_back("encoder.layer." + m[1].str() + ".attention.attention." + roles[i] + "." + m[2].str(),
                           parts[i].contiguous());
        continue;
      }
      out.emplace_back(shown(name, naming), t);
    }
  }
  io::save_safetensors(path, out);
}

}  // namespace repa::encoders
