#include "core/models/ldm_single_file.h"

#include <filesystem>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/config/sd_single_file.h"
#include "core/io/safetensors.h"
#include "core/models/unet_2d_condition.h"

namespace repa::models {

namespace fs = std::filesystem;

namespace {

const std::string kUNetPrefix = "model.diffusion_model.";
const std::string kVaePrefix = "first_stage_model.";

std::string str(int64_t i) {
  return std::to_string(i);
}

bool starts_with(const std::string& text, const std::string& head) {
  return text.rfind(head, 0) == 0;
}

std::string label(const std::string& family) {
  return family == "sdxl" ? "SDXL" : family == "sd2x" ? "SD 2.x" : family == "sd1x" ? "SD 1.x" : family;
}

// Where each text encoder lives in the single file, and whether it is OpenCLIP (fused in_proj) or CLIP-L.
struct TextPart {
  std::string component, prefix;
  bool open_clip;
};

std::vector<TextPart> text_parts(const std::string& family) {
  if (family == "sd1x") return {{"text_encoder", "cond_stage_model.transformer.", false}};
  if (family == "sd2x") return {{"text_encoder", "cond_stage_model.model.", true}};
  if (family == "sdxl")
    return {{"text_encoder", "conditioner.embedders.0.transformer.", false},
            {"text_encoder_2", "conditioner.embedders.1.model.", true}};
  throw InputError("no LDM single-file table for model_family '" + family + "' (sd1x, sd2x, sdxl)");
}

// The UNet's ResnetBlock2D: LDM's in_layers / emb_layers / out_layers / skip_connection.
void unet_resnet(NameTableBuilder& t, const NameShape& shape, const std::string& o, const std::string& d) {
  t.linear(o + ".in_layers.0", d + ".norm1");
  t.linear(o + ".in_layers.2", d + ".conv1");
  t.linear(o + ".emb_layers.1", d + ".time_emb_proj");
  t.linear(o + ".out_layers.0", d + ".norm2");
  t.linear(o + ".out_layers.3", d + ".conv2");
  if (shape.has(o + ".skip_connection.weight", d + ".conv_shortcut.weight"))
    t.linear(o + ".skip_connection", d + ".conv_shortcut");
}

// A Transformer2DModel: the same inner names on both sides.
void unet_attention(NameTableBuilder& t, const NameShape& shape, const std::string& o, const std::string& d) {
  for (const std::string m : {".norm", ".proj_in", ".proj_out"}) t.linear(o + m, d + m);
  for (int64_t b = 0; b < shape.count(o + ".transformer_blocks", d + ".transformer_blocks"); ++b) {
    const std::string ob = o + ".transformer_blocks." + str(b), db = d + ".transformer_blocks." + str(b);
    for (const std::string m :
         {".norm1", ".norm2", ".norm3", ".attn1.to_out.0", ".attn2.to_out.0", ".ff.net.0.proj", ".ff.net.2"})
      t.linear(ob + m, db + m);
    for (const std::string a : {".attn1", ".attn2"})
      for (const std::string p : {".to_q.weight", ".to_k.weight", ".to_v.weight"}) t.copy(ob + a + p, db + a + p);
  }
}

void vae_resnet(NameTableBuilder& t, const NameShape& shape, const std::string& o, const std::string& d) {
  for (const std::string m : {".norm1", ".conv1", ".norm2", ".conv2"}) t.linear(o + m, d + m);
  if (shape.has(o + ".nin_shortcut.weight", d + ".conv_shortcut.weight"))
    t.linear(o + ".nin_shortcut", d + ".conv_shortcut");
}

void vae_mid(NameTableBuilder& t, const NameShape& shape, const std::string& o, const std::string& d) {
  vae_resnet(t, shape, o + ".mid.block_1", d + ".mid_block.resnets.0");
  const std::string oa = o + ".mid.attn_1", da = d + ".mid_block.attentions.0";
  t.linear(oa + ".norm", da + ".group_norm");
  // LDM's attention projections are 1×1 convolutions; diffusers' are linears.
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {".q", ".to_q"}, {".k", ".to_k"}, {".v", ".to_v"}, {".proj_out", ".to_out.0"}}) {
    t.squeeze(oa + from + ".weight", da + to + ".weight");
    t.copy(oa + from + ".bias", da + to + ".bias");
  }
  vae_resnet(t, shape, o + ".mid.block_2", d + ".mid_block.resnets.1");
}

nlohmann::json metadata_json(const std::map<std::string, std::string>& metadata, const std::string& key,
                             const std::string& path) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return nullptr;
  return parse_json_bounded(it->second, path + " (metadata " + key + ")");
}

int64_t rows_of(const TensorMap& m, const std::string& name, const std::string& origin, int64_t dim = 0) {
  const auto it = m.find(name);
  if (it == m.end() || it->second.dim() <= dim) throw InputError(origin + ": the single file lacks " + name);
  return it->second.size(dim);
}

int64_t count_of(const TensorMap& m, const std::string& kind) {
  return NameShape(m, true).count(kind, kind);
}

// SD 1.5, SD 2.1 768-v and SDXL base, with what the shapes say filled in.
nlohmann::json infer_unet_config(const TensorMap& u, const std::string& family, int64_t pooled_width,
                                 const std::string& origin) {
  std::vector<int64_t> channels, transformer_layers;
  std::vector<bool> attention;
  int64_t layers = 0, j = 0, cross = 0;
  bool linear_projection = false;
  channels.push_back(0);
  attention.push_back(false);
  transformer_layers.push_back(1);
  for (int64_t k = 1; k < count_of(u, "input_blocks"); ++k) {
    const std::string b = "input_blocks." + str(k);
    if (u.count(b + ".0.op.weight")) {
      channels.push_back(0);
      attention.push_back(false);
      transformer_layers.push_back(1);
      j = 0;
      continue;
    }
    channels.back() = rows_of(u, b + ".0.out_layers.3.weight", origin);
    if (u.count(b + ".1.proj_in.weight")) {
      attention.back() = true;
      transformer_layers.back() = count_of(u, b + ".1.transformer_blocks");
      linear_projection = u.at(b + ".1.proj_in.weight").dim() == 2;
      cross = rows_of(u, b + ".1.transformer_blocks.0.attn2.to_k.weight", origin, 1);
    }
    layers = std::max(layers, ++j);
  }
  nlohmann::json c = {{"_class_name", "UNet2DConditionModel"},
                      {"sample_size", family == "sdxl"   ? 128
                                      : family == "sd2x" ? 96
                                                         : 64},
                      {"in_channels", rows_of(u, "input_blocks.0.0.weight", origin, 1)},
                      {"out_channels", rows_of(u, "out.2.weight", origin)},
                      {"block_out_channels", channels},
                      {"layers_per_block", layers},
                      {"norm_num_groups", 32},
                      {"cross_attention_dim", cross},
                      {"use_linear_projection", linear_projection},
                      {"transformer_layers_per_block", transformer_layers}};
  nlohmann::json down = nlohmann::json::array(), up = nlohmann::json::array(), heads = nlohmann::json::array();
  for (std::size_t i = 0; i < channels.size(); ++i) {
    down.push_back(attention[i] ? "CrossAttnDownBlock2D" : "DownBlock2D");
    up.push_back(attention[channels.size() - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D");
    heads.push_back(channels[i] / 64);  // SD 2.x and SDXL: 64-wide heads
  }
  c["down_block_types"] = down;
  c["up_block_types"] = up;
  c["attention_head_dim"] = family == "sd1x" ? nlohmann::json(8) : heads;  // SD 1.x: 8 heads everywhere
  if (u.count("label_emb.0.0.weight")) {
    const int64_t input = rows_of(u, "label_emb.0.0.weight", origin, 1);
    c["addition_embed_type"] = "text_time";
    c["projection_class_embeddings_input_dim"] = input;
    c["addition_time_embed_dim"] = pooled_width > 0 ? (input - pooled_width) / 6 : 256;
  }
  return c;
}

nlohmann::json infer_vae_config(const TensorMap& v, const std::string& family, const std::string& origin) {
  const int64_t blocks = count_of(v, "encoder.down");
  nlohmann::json channels = nlohmann::json::array(), down = nlohmann::json::array(), up = nlohmann::json::array();
  for (int64_t i = 0; i < blocks; ++i) {
    channels.push_back(rows_of(v, "encoder.down." + str(i) + ".block.0.conv2.weight", origin));
    down.push_back("DownEncoderBlock2D");
    up.push_back("UpDecoderBlock2D");
  }
  return {{"_class_name", "AutoencoderKL"},
          {"in_channels", rows_of(v, "encoder.conv_in.weight", origin, 1)},
          {"out_channels", rows_of(v, "decoder.conv_out.weight", origin)},
          {"latent_channels", rows_of(v, "decoder.conv_in.weight", origin, 1)},
          {"block_out_channels", channels},
          {"down_block_types", down},
          {"up_block_types", up},
          {"layers_per_block", count_of(v, "encoder.down.0.block")},
          {"norm_num_groups", 32},
          {"sample_size", family == "sdxl"   ? 1024
                          : family == "sd2x" ? 768
                                             : 512},
          {"scaling_factor", family == "sdxl" ? 0.13025 : 0.18215}};
}

// CLIP-L (quick_gelu) and OpenCLIP-H / bigG (gelu): 64-wide heads, the SD configs' token ids.
nlohmann::json infer_text_config(const TensorMap& t, const TextPart& part, int64_t layers, const std::string& origin) {
  const std::string token = part.open_clip ? "token_embedding.weight" : "text_model.embeddings.token_embedding.weight";
  const std::string position =
      part.open_clip ? "positional_embedding" : "text_model.embeddings.position_embedding.weight";
  const std::string fc1 =
      part.open_clip ? "transformer.resblocks.0.mlp.c_fc.weight" : "text_model.encoder.layers.0.mlp.fc1.weight";
  const int64_t hidden = rows_of(t, token, origin, 1);
  nlohmann::json c = {{"_class_name", "CLIPTextModel"},
                      {"architectures", {"CLIPTextModel"}},
                      {"vocab_size", rows_of(t, token, origin)},
                      {"hidden_size", hidden},
                      {"intermediate_size", rows_of(t, fc1, origin)},
                      {"num_hidden_layers", layers},
                      {"num_attention_heads", hidden / 64},
                      {"max_position_embeddings", rows_of(t, position, origin)},
                      {"hidden_act", part.open_clip ? "gelu" : "quick_gelu"},
                      {"layer_norm_eps", 1e-5},
                      {"bos_token_id", 0},
                      {"eos_token_id", 2},
                      {"pad_token_id", 1}};
  if (part.component == "text_encoder_2") {
    c["architectures"] = {"CLIPTextModelWithProjection"};
    c["projection_dim"] = rows_of(t, "text_projection", origin, 1);
  }
  return c;
}

nlohmann::json default_scheduler(const std::string& family) {
  return {{"_class_name", family == "sd2x" ? "EulerDiscreteScheduler" : "DDPMScheduler"},
          {"num_train_timesteps", 1000},
          {"beta_start", 0.00085},
          {"beta_end", 0.012},
          {"beta_schedule", "scaled_linear"},
          {"prediction_type", family == "sd2x" ? "v_prediction" : "epsilon"},
          {"steps_offset", 1},
          {"timestep_spacing", "leading"},
          {"clip_sample", false},
          {"set_alpha_to_one", false}};
}

bool has_projection(const nlohmann::json& text_config) {
  const auto it = text_config.find("architectures");
  return it != text_config.end() && it->is_array() && !it->empty() && (*it)[0] == "CLIPTextModelWithProjection";
}

NameTable text_table(const TextPart& part, const nlohmann::json& config, const std::string& origin) {
  const auto layers = config.value("num_hidden_layers", int64_t{0});
  const auto width = config.value("hidden_size", int64_t{0});
  if (layers <= 0 || width <= 0)
    throw InputError(origin + ": the " + part.component + " config has no num_hidden_layers / hidden_size");
  return part.open_clip ? ldm_open_clip_table(layers, width, has_projection(config))
                        : ldm_clip_table(layers, has_projection(config));
}

NameTable unet_table_for(const nlohmann::json& config, const NameShape& shape) {
  return ldm_unet_table(LdmUNetLayout::from_config(config), shape);
}

NameTable vae_table_for(const nlohmann::json& config, const NameShape& shape, const std::string& origin) {
  const auto boc = config.find("block_out_channels");
  if (boc == config.end() || !boc->is_array() || boc->empty())
    throw InputError(origin + ": the VAE config has no block_out_channels");
  return ldm_vae_table(static_cast<int64_t>(boc->size()), config.value("layers_per_block", int64_t{1}), shape);
}

}  // namespace

LdmUNetLayout LdmUNetLayout::from_config(const nlohmann::json& config) {
  const auto c = UNet2DConditionConfig::from_json(config);
  LdmUNetLayout layout;
  layout.channels = c.block_out_channels;
  layout.transformer_layers = c.transformer_layers_per_block;
  for (const auto& type : c.down_block_types) layout.attention.push_back(type.find("CrossAttn") != std::string::npos);
  layout.layers_per_block = c.layers_per_block.empty() ? 2 : c.layers_per_block[0];
  for (const auto n : c.layers_per_block)
    if (n != layout.layers_per_block)
      throw InputError("UNet config: layers_per_block differs between blocks, which the LDM names cannot express");
  layout.text_time = c.addition_embed_type == "text_time";
  return layout;
}

NameTable ldm_unet_table(const LdmUNetLayout& layout, const NameShape& shape) {
  NameTableBuilder t;
  const int64_t n = static_cast<int64_t>(layout.channels.size()), per = layout.layers_per_block;
  t.linear("time_embed.0", "time_embedding.linear_1");
  t.linear("time_embed.2", "time_embedding.linear_2");
  if (layout.text_time) {
    t.linear("label_emb.0.0", "add_embedding.linear_1");
    t.linear("label_emb.0.2", "add_embedding.linear_2");
  }
  t.linear("input_blocks.0.0", "conv_in");
  // input_blocks.k: conv_in, then per down block its resnets (with their attention) and a downsampler.
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < per; ++j) {
      const std::string o = "input_blocks." + str(1 + i * (per + 1) + j), d = "down_blocks." + str(i);
      unet_resnet(t, shape, o + ".0", d + ".resnets." + str(j));
      if (layout.attention[i]) unet_attention(t, shape, o + ".1", d + ".attentions." + str(j));
    }
    if (i < n - 1)
      t.linear("input_blocks." + str(1 + i * (per + 1) + per) + ".0.op",
               "down_blocks." + str(i) + ".downsamplers.0.conv");
  }
  unet_resnet(t, shape, "middle_block.0", "mid_block.resnets.0");
  if (shape.has("middle_block.1.proj_in.weight", "mid_block.attentions.0.proj_in.weight")) {
    unet_attention(t, shape, "middle_block.1", "mid_block.attentions.0");
    unet_resnet(t, shape, "middle_block.2", "mid_block.resnets.1");
  } else {
    unet_resnet(t, shape, "middle_block.1", "mid_block.resnets.1");
  }
  // output_blocks.k: per up block (the down blocks reversed) one resnet more, the upsampler after the last.
  for (int64_t u = 0; u < n; ++u) {
    const bool attention = layout.attention[n - 1 - u];
    for (int64_t j = 0; j <= per; ++j) {
      const std::string o = "output_blocks." + str(u * (per + 1) + j), d = "up_blocks." + str(u);
      unet_resnet(t, shape, o + ".0", d + ".resnets." + str(j));
      if (attention) unet_attention(t, shape, o + ".1", d + ".attentions." + str(j));
      if (u < n - 1 && j == per) t.linear(o + (attention ? ".2" : ".1") + ".conv", d + ".upsamplers.0.conv");
    }
  }
  t.linear("out.0", "conv_norm_out");
  t.linear("out.2", "conv_out");
  return t.table();
}

NameTable ldm_vae_table(int64_t blocks, int64_t per, const NameShape& shape) {
  NameTableBuilder t;
  t.linear("encoder.conv_in", "encoder.conv_in");
  for (int64_t i = 0; i < blocks; ++i) {
    for (int64_t j = 0; j < per; ++j)
      vae_resnet(t, shape, "encoder.down." + str(i) + ".block." + str(j),
                 "encoder.down_blocks." + str(i) + ".resnets." + str(j));
    if (i < blocks - 1)
      t.linear("encoder.down." + str(i) + ".downsample.conv", "encoder.down_blocks." + str(i) + ".downsamplers.0.conv");
  }
  vae_mid(t, shape, "encoder", "encoder");
  t.linear("encoder.norm_out", "encoder.conv_norm_out");
  t.linear("encoder.conv_out", "encoder.conv_out");
  if (shape.has("quant_conv.weight", "quant_conv.weight")) t.linear("quant_conv", "quant_conv");
  if (shape.has("post_quant_conv.weight", "post_quant_conv.weight")) t.linear("post_quant_conv", "post_quant_conv");
  t.linear("decoder.conv_in", "decoder.conv_in");
  vae_mid(t, shape, "decoder", "decoder");
  // LDM numbers the decoder's up blocks from the lowest resolution's end: diffusers' up_blocks.i is up.(n-1-i).
  for (int64_t i = 0; i < blocks; ++i) {
    const std::string o = "decoder.up." + str(blocks - 1 - i), d = "decoder.up_blocks." + str(i);
    for (int64_t j = 0; j <= per; ++j) vae_resnet(t, shape, o + ".block." + str(j), d + ".resnets." + str(j));
    if (i < blocks - 1) t.linear(o + ".upsample.conv", d + ".upsamplers.0.conv");
  }
  t.linear("decoder.norm_out", "decoder.conv_norm_out");
  t.linear("decoder.conv_out", "decoder.conv_out");
  return t.table();
}

NameTable ldm_clip_table(int64_t layers, bool projection) {
  NameTableBuilder t;
  for (const std::string e : {"token_embedding", "position_embedding"})
    t.copy("text_model.embeddings." + e + ".weight", "text_model.embeddings." + e + ".weight");
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = "text_model.encoder.layers." + str(i);
    for (const std::string m : {".self_attn.q_proj", ".self_attn.k_proj", ".self_attn.v_proj", ".self_attn.out_proj",
                                ".layer_norm1", ".mlp.fc1", ".mlp.fc2", ".layer_norm2"})
      t.linear(l + m, l + m);
  }
  t.linear("text_model.final_layer_norm", "text_model.final_layer_norm");
  if (projection) t.copy("text_projection.weight", "text_projection.weight");
  return t.table();
}

NameTable ldm_open_clip_table(int64_t layers, int64_t width, bool projection) {
  NameTableBuilder t;
  t.copy("token_embedding.weight", "text_model.embeddings.token_embedding.weight");
  t.copy("positional_embedding", "text_model.embeddings.position_embedding.weight");
  for (int64_t i = 0; i < layers; ++i) {
    const std::string o = "transformer.resblocks." + str(i), d = "text_model.encoder.layers." + str(i);
    t.linear(o + ".ln_1", d + ".layer_norm1");
    // nn.MultiheadAttention's in_proj holds q, k and v stacked by rows.
    t.fuse(o + ".attn.in_proj_weight",
           {d + ".self_attn.q_proj.weight", d + ".self_attn.k_proj.weight", d + ".self_attn.v_proj.weight"},
           {width, width, width});
    t.fuse(o + ".attn.in_proj_bias",
           {d + ".self_attn.q_proj.bias", d + ".self_attn.k_proj.bias", d + ".self_attn.v_proj.bias"},
           {width, width, width});
    t.linear(o + ".attn.out_proj", d + ".self_attn.out_proj");
    t.linear(o + ".ln_2", d + ".layer_norm2");
    t.linear(o + ".mlp.c_fc", d + ".mlp.fc1");
    t.linear(o + ".mlp.c_proj", d + ".mlp.fc2");
  }
  t.linear("ln_final", "text_model.final_layer_norm");
  // OpenCLIP multiplies x @ text_projection; transformers' Linear stores the transpose.
  if (projection) t.transpose("text_projection", "text_projection.weight");
  return t.table();
}

SdPipelineParts read_ldm_single_file(const std::string& path, const std::string& family) {
  const auto parts_of_family = text_parts(family);
  const auto file = io::SafetensorsFile::open(path);
  config::SafetensorsHeader header;
  for (const auto& name : file.names()) header.shapes[name] = file.info(name).shape;
  header.metadata = file.metadata();
  const auto found = config::sd_single_file_family(header);
  if (found.family.empty())
    throw InputError("'" + path + "' is not a Stable Diffusion single file in the LDM/SGM names: it holds " +
                     found.evidence);
  if (found.family != family)
    throw InputError("'" + path + "': this checkpoint is " + label(found.family) + ": " + found.evidence +
                     "; model_family is " + family);

  // Each part's tensors with its prefix removed; what belongs to no part (EMA copies, LDM buffers) is skipped.
  TensorMap unet, vae;
  std::map<std::string, TensorMap> text;
  for (const auto& name : file.names()) {
    if (starts_with(name, kUNetPrefix)) {
      unet[name.substr(kUNetPrefix.size())] = file.tensor(name, /*view=*/true);
    } else if (starts_with(name, kVaePrefix)) {
      // Some files keep the autoencoder's training loss (discriminator, logvar); the VAE does not read it.
      if (!starts_with(name, kVaePrefix + "loss.")) vae[name.substr(kVaePrefix.size())] = file.tensor(name, true);
    } else {
      for (const auto& part : parts_of_family) {
        if (!starts_with(name, part.prefix)) continue;
        const auto own = name.substr(part.prefix.size());
        const bool ignored = own == "text_model.embeddings.position_ids" || own == "logit_scale" || own == "attn_mask";
        if (!ignored) text[part.component][own] = file.tensor(name, /*view=*/true);
      }
    }
  }
  if (unet.empty()) throw InputError("'" + path + "' has no UNet (model.diffusion_model.*)");
  if (vae.empty()) throw InputError("'" + path + "' has no VAE (first_stage_model.*)");

  SdPipelineParts parts;
  parts.family = family;
  const auto& meta = file.metadata();
  for (const auto& part : parts_of_family) {
    const std::string origin = path + " (" + part.prefix + "*)";
    auto& tensors = text[part.component];
    if (tensors.empty()) throw InputError("'" + path + "' has no " + part.component + " (" + part.prefix + "*)");
    auto config = metadata_json(meta, "repa." + part.component + "_config", path);
    const int64_t found_layers =
        count_of(tensors, part.open_clip ? "transformer.resblocks" : "text_model.encoder.layers");
    // SD 2.x conditions on OpenCLIP-H's penultimate layer: diffusers' text encoder stops there and has no
    // projection, so the last layer and text_projection of an original file are not read.
    if (config.is_null())
      config = infer_text_config(tensors, part, family == "sd2x" ? found_layers - 1 : found_layers, origin);
    if (family == "sd2x") {
      const int64_t keep = config.value("num_hidden_layers", int64_t{0});
      for (auto it = tensors.begin(); it != tensors.end();) {
        const bool dropped =
            it->first == "text_projection" || (starts_with(it->first, "transformer.resblocks.") &&
                                               std::stoll(it->first.substr(22, it->first.find('.', 22) - 22)) >= keep);
        it = dropped ? tensors.erase(it) : std::next(it);
      }
    }
    parts.configs[part.component] = config;
    parts.weights[part.component] =
        apply_official_to_diffusers(text_table(part, config, origin), tensors, label(family), origin);
  }
  int64_t pooled = 0;
  if (parts.configs.count("text_encoder_2")) pooled = parts.configs["text_encoder_2"].value("projection_dim", 0);
  auto unet_config = metadata_json(meta, "repa.unet_config", path);
  if (unet_config.is_null()) unet_config = infer_unet_config(unet, family, pooled, path + " (" + kUNetPrefix + "*)");
  auto vae_config = metadata_json(meta, "repa.vae_config", path);
  if (vae_config.is_null()) vae_config = infer_vae_config(vae, family, path + " (" + kVaePrefix + "*)");
  auto scheduler = metadata_json(meta, "repa.scheduler_config", path);
  parts.configs["unet"] = unet_config;
  parts.configs["vae"] = vae_config;
  parts.configs["scheduler"] = scheduler.is_null() ? default_scheduler(family) : scheduler;
  parts.weights["unet"] = apply_official_to_diffusers(unet_table_for(unet_config, NameShape(unet, true)), unet,
                                                      label(family), path + " (" + kUNetPrefix + "*)");
  const auto vae_origin = path + " (" + kVaePrefix + "*)";
  parts.weights["vae"] = apply_official_to_diffusers(vae_table_for(vae_config, NameShape(vae, true), vae_origin), vae,
                                                     label(family), vae_origin);
  return parts;
}

std::map<std::string, torch::Tensor> ldm_single_file_tensors(const SdPipelineParts& parts, const std::string& origin) {
  TensorMap out;
  const auto add = [&](const TensorMap& official, const std::string& prefix) {
    for (const auto& [name, t] : official) out[prefix + name] = t;
  };
  const auto weights = [&](const std::string& component) -> const TensorMap* {
    const auto it = parts.weights.find(component);
    return it == parts.weights.end() ? nullptr : &it->second;
  };
  const auto config = [&](const std::string& component) {
    const auto it = parts.configs.find(component);
    if (it == parts.configs.end() || !it->second.is_object())
      throw InputError(origin + ": the " + component + " has no config.json");
    return it->second;
  };
  if (const auto* u = weights("unet"))
    add(apply_diffusers_to_official(unet_table_for(config("unet"), NameShape(*u, false)), *u, label(parts.family),
                                    origin + " (unet)"),
        kUNetPrefix);
  if (const auto* v = weights("vae"))
    add(apply_diffusers_to_official(vae_table_for(config("vae"), NameShape(*v, false), origin), *v, label(parts.family),
                                    origin + " (vae)"),
        kVaePrefix);
  for (const auto& part : text_parts(parts.family))
    if (const auto* t = weights(part.component))
      add(apply_diffusers_to_official(text_table(part, config(part.component), origin), *t, label(parts.family),
                                      origin + " (" + part.component + ")"),
          part.prefix);
  return out;
}

std::map<std::string, std::string> ldm_single_file_metadata(const SdPipelineParts& parts) {
  std::map<std::string, std::string> out = {{"format", "pt"}, {"repa.family", parts.family}};
  for (const auto& [component, config] : parts.configs)
    if (config.is_object()) out["repa." + component + "_config"] = config.dump();
  return out;
}

}  // namespace repa::models
