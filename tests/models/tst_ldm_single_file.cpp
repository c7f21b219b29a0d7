// The LDM tables at the real block structure (SD 1.5: four blocks, the last without attention; SDXL: three blocks,
// the first without attention, 1/2/10-deep transformers; the VAE's four blocks), at tiny widths: the names land
// where SD 1.5's and SDXL's original files have them, and every tensor comes back exactly.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>

#include "core/models/autoencoder_kl.h"
#include "core/models/ldm_single_file.h"
#include "core/models/unet_2d_condition.h"
#include "tests/test_support.h"

using namespace repa;
using models::NameShape;

namespace {

models::TensorMap state_of(torch::nn::Module& module) {
  models::TensorMap out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().detach();
  return out;
}

void check_round_trip(const models::NameTable& write_table, const models::TensorMap& diffusers,
                      const std::function<models::NameTable(const NameShape&)>& table_for) {
  const auto official = models::apply_diffusers_to_official(write_table, diffusers, "test", "written");
  const auto back = models::apply_official_to_diffusers(table_for(NameShape(official, true)), official, "test", "read");
  REQUIRE(back.size() == diffusers.size());
  for (const auto& [name, t] : diffusers) {
    CAPTURE(name);
    REQUIRE(back.count(name));
    CHECK(torch::equal(back.at(name), t));
  }
}

}  // namespace

TEST_CASE("SD 1.5's block structure: input, middle and output block numbers as in its original files") {
  nlohmann::json config = {
      {"block_out_channels", {8, 16, 16, 16}},
      {"down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
      {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
      {"layers_per_block", 2},
      {"attention_head_dim", 2},
      {"cross_attention_dim", 8},
      {"norm_num_groups", 4}};
  torch::manual_seed(1);
  models::UNet2DConditionModel unet(models::UNet2DConditionConfig::from_json(config));
  const auto d = state_of(*unet);
  const auto layout = models::LdmUNetLayout::from_config(config);
  const auto official =
      models::apply_diffusers_to_official(models::ldm_unet_table(layout, NameShape(d, false)), d, "SD 1.x", "unet");
  const auto same = [&](const std::string& ldm, const std::string& diffusers) {
    CAPTURE(ldm);
    REQUIRE(official.count(ldm));
    CHECK(torch::equal(official.at(ldm), d.at(diffusers)));
  };
  same("input_blocks.2.1.transformer_blocks.0.attn1.to_q.weight",
       "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q.weight");
  same("input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight");
  same("input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight");
  same("input_blocks.6.0.op.weight", "down_blocks.1.downsamplers.0.conv.weight");
  same("input_blocks.9.0.op.weight", "down_blocks.2.downsamplers.0.conv.weight");
  same("input_blocks.11.0.out_layers.3.weight", "down_blocks.3.resnets.1.conv2.weight");
  same("middle_block.1.proj_in.weight", "mid_block.attentions.0.proj_in.weight");
  same("middle_block.2.emb_layers.1.weight", "mid_block.resnets.1.time_emb_proj.weight");
  same("output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight");  // no attention: .1
  same("output_blocks.5.2.conv.weight", "up_blocks.1.upsamplers.0.conv.weight");  // after the attention: .2
  same("output_blocks.8.2.conv.weight", "up_blocks.2.upsamplers.0.conv.weight");
  same("output_blocks.11.1.proj_out.bias", "up_blocks.3.attentions.2.proj_out.bias");
  same("output_blocks.0.0.skip_connection.weight", "up_blocks.0.resnets.0.conv_shortcut.weight");
  CHECK_FALSE(official.count("input_blocks.12.0.op.weight"));
  CHECK_FALSE(official.count("output_blocks.11.2.conv.weight"));
  CHECK(official.size() == d.size());
  check_round_trip(models::ldm_unet_table(layout, NameShape(d, false)), d,
                   [&](const NameShape& s) { return models::ldm_unet_table(layout, s); });
}

TEST_CASE("SDXL's block structure: label_emb, 2- and 10-deep transformers, no attention in the first block") {
  nlohmann::json config = {{"block_out_channels", {8, 16, 16}},
                           {"down_block_types", {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"}},
                           {"up_block_types", {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}},
                           {"layers_per_block", 2},
                           {"transformer_layers_per_block", {1, 2, 10}},
                           {"attention_head_dim", {1, 2, 2}},
                           {"cross_attention_dim", 8},
                           {"use_linear_projection", true},
                           {"addition_embed_type", "text_time"},
                           {"addition_time_embed_dim", 4},
                           {"projection_class_embeddings_input_dim", 8 + 6 * 4},
                           {"norm_num_groups", 4}};
  torch::manual_seed(2);
  models::UNet2DConditionModel unet(models::UNet2DConditionConfig::from_json(config));
  const auto d = state_of(*unet);
  const auto layout = models::LdmUNetLayout::from_config(config);
  const auto official =
      models::apply_diffusers_to_official(models::ldm_unet_table(layout, NameShape(d, false)), d, "SDXL", "unet");
  const auto same = [&](const std::string& ldm, const std::string& diffusers) {
    CAPTURE(ldm);
    REQUIRE(official.count(ldm));
    CHECK(torch::equal(official.at(ldm), d.at(diffusers)));
  };
  same("label_emb.0.0.weight", "add_embedding.linear_1.weight");
  same("label_emb.0.2.bias", "add_embedding.linear_2.bias");
  same("input_blocks.4.1.transformer_blocks.1.ff.net.0.proj.weight",
       "down_blocks.1.attentions.0.transformer_blocks.1.ff.net.0.proj.weight");
  same("input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight",
       "down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k.weight");
  same("middle_block.1.transformer_blocks.9.norm3.weight", "mid_block.attentions.0.transformer_blocks.9.norm3.weight");
  same("output_blocks.2.2.conv.weight", "up_blocks.0.upsamplers.0.conv.weight");
  same("output_blocks.2.1.transformer_blocks.9.attn1.to_out.0.weight",
       "up_blocks.0.attentions.2.transformer_blocks.9.attn1.to_out.0.weight");
  same("output_blocks.5.2.conv.weight", "up_blocks.1.upsamplers.0.conv.weight");
  same("output_blocks.8.0.in_layers.2.weight", "up_blocks.2.resnets.2.conv1.weight");
  CHECK_FALSE(official.count("input_blocks.1.1.proj_in.weight"));
  CHECK_FALSE(official.count("output_blocks.8.1.conv.weight"));
  CHECK(official.size() == d.size());
  check_round_trip(models::ldm_unet_table(layout, NameShape(d, false)), d,
                   [&](const NameShape& s) { return models::ldm_unet_table(layout, s); });
}

TEST_CASE("the SD VAE's structure: four blocks, decoder up blocks numbered from the other end, conv attention") {
  nlohmann::json config = {
      {"block_out_channels", {4, 8, 8, 8}},
      {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
      {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}},
      {"layers_per_block", 2},
      {"latent_channels", 4},
      {"norm_num_groups", 4}};
  torch::manual_seed(3);
  models::AutoencoderKL vae(models::AutoencoderKLConfig::from_json(config));
  const auto d = state_of(*vae);
  const auto table = models::ldm_vae_table(4, 2, NameShape(d, false));
  const auto official = models::apply_diffusers_to_official(table, d, "SD", "vae");
  CHECK(torch::equal(official.at("decoder.up.3.block.2.conv1.weight"),
                     d.at("decoder.up_blocks.0.resnets.2.conv1.weight")));
  CHECK(torch::equal(official.at("decoder.up.3.upsample.conv.weight"),
                     d.at("decoder.up_blocks.0.upsamplers.0.conv.weight")));
  CHECK_FALSE(official.count("decoder.up.0.upsample.conv.weight"));
  CHECK_FALSE(official.count("encoder.down.3.downsample.conv.weight"));
  CHECK(torch::equal(official.at("encoder.down.1.block.0.nin_shortcut.weight"),
                     d.at("encoder.down_blocks.1.resnets.0.conv_shortcut.weight")));
  CHECK(official.at("decoder.mid.attn_1.proj_out.weight").sizes() == torch::IntArrayRef({8, 8, 1, 1}));
  CHECK(torch::equal(official.at("encoder.mid.attn_1.norm.weight"),
                     d.at("encoder.mid_block.attentions.0.group_norm.weight")));
  CHECK(official.size() == d.size());
  check_round_trip(table, d, [](const NameShape& s) { return models::ldm_vae_table(4, 2, s); });
}

TEST_CASE("OpenCLIP's fused in_proj of the wrong size and an unknown tensor are named") {
  const int64_t width = 4;
  models::TensorMap official;
  const auto table = models::ldm_open_clip_table(1, width, true);
  for (const auto& rule : table) {
    const bool fused = rule.kind == models::NameRule::Kind::Fuse;
    official[rule.official] = torch::randn({fused ? 3 * width : width, width});
  }
  auto bad = official;
  bad["transformer.resblocks.0.attn.in_proj_weight"] = torch::zeros({11, width});
  CHECK(
      test::contains(test::error_of([&] { models::apply_official_to_diffusers(table, bad, "SDXL", "x.safetensors"); }),
                     "x.safetensors: transformer.resblocks.0.attn.in_proj_weight has 11 rows, expected 12"));
  const auto d = models::apply_official_to_diffusers(table, official, "SDXL", "x.safetensors");
  CHECK(torch::equal(d.at("text_projection.weight"), official.at("text_projection").t()));
  CHECK(torch::equal(d.at("text_model.encoder.layers.0.self_attn.v_proj.weight"),
                     official.at("transformer.resblocks.0.attn.in_proj_weight").narrow(0, 2 * width, width)));
  auto extra = d;
  extra["text_model.encoder.layers.0.self_attn.extra"] = torch::zeros({1});
  CHECK(test::contains(test::error_of([&] { models::apply_diffusers_to_official(table, extra, "SDXL", "m"); }),
                       "has no official name for: text_model.encoder.layers.0.self_attn.extra"));
}
