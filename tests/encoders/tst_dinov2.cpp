// The DINOv2 module: parameter names and shapes of the released architectures, both namings giving the
// same encoder, positional interpolation, seeded random init, frozen state.
#include <doctest/doctest.h>

#include <torch/torch.h>

#include <map>
#include <string>

#include "core/encoders/dinov2.h"
#include "core/encoders/dinov2_weights.h"
#include "core/io/safetensors.h"
#include "tests/test_support.h"

using namespace repa::encoders;

namespace {

std::map<std::string, std::vector<int64_t>> shapes_of(Dinov2& model) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : model->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  return shapes;
}

Dinov2Config tiny_config(bool registers, FeedForwardKind ffn) {
  Dinov2Config c;
  c.embed_dim = 32, c.depth = 2, c.num_heads = 2, c.position_grid = 4;
  c.ffn = ffn;
  c.ffn_hidden = ffn == FeedForwardKind::SwiGlu ? Dinov2Config::swiglu_hidden(128) : 128;
  c.num_register_tokens = registers ? 4 : 0;
  c.interpolate_offset = registers ? 0.0 : 0.1;
  c.interpolate_antialias = registers;
  return c;
}

}  // namespace

TEST_CASE("ViT-S/14 has the torch.hub checkpoint's names and shapes") {
  auto model = Dinov2(Dinov2Config::for_size("s", false));
  const auto shapes = shapes_of(model);
  CHECK(shapes.at("pos_embed") == std::vector<int64_t>{1, 1370, 384});
  CHECK(shapes.at("cls_token") == std::vector<int64_t>{1, 1, 384});
  CHECK(shapes.at("mask_token") == std::vector<int64_t>{1, 384});
  CHECK(shapes.at("patch_embed.proj.weight") == std::vector<int64_t>{384, 3, 14, 14});
  CHECK(shapes.at("blocks.11.attn.qkv.weight") == std::vector<int64_t>{1152, 384});
  CHECK(shapes.at("blocks.11.mlp.fc1.weight") == std::vector<int64_t>{1536, 384});
  CHECK(shapes.at("blocks.11.ls2.gamma") == std::vector<int64_t>{384});
  CHECK(shapes.at("norm.bias") == std::vector<int64_t>{384});
  CHECK(shapes.count("blocks.12.norm1.weight") == 0);
  CHECK(shapes.count("register_tokens") == 0);
  // 12 blocks × 14 tensors + patch embed 2 + cls/pos/mask 3 + final norm 2.
  CHECK(shapes.size() == 12 * 14 + 7);
}

TEST_CASE("released sizes: widths, depths, heads, SwiGLU hidden width for g, registers") {
  const auto g = Dinov2Config::for_size("g", false);
  CHECK(g.embed_dim == 1536);
  CHECK(g.depth == 40);
  CHECK(g.num_heads == 24);
  CHECK(g.ffn == FeedForwardKind::SwiGlu);
  CHECK(g.ffn_hidden == 4096);  // w12: 8192 × 1536, w3: 1536 × 4096 in the released checkpoint
  const auto l = Dinov2Config::for_size("l", true);
  CHECK(l.embed_dim == 1024);
  CHECK(l.depth == 24);
  CHECK(l.ffn_hidden == 4096);
  CHECK(l.num_register_tokens == 4);
  CHECK(l.interpolate_offset == 0.0);
  CHECK(l.interpolate_antialias);
  const auto b = Dinov2Config::for_size("b", false);
  CHECK(b.embed_dim == 768);
  CHECK(b.interpolate_offset == doctest::Approx(0.1));
  CHECK_FALSE(b.interpolate_antialias);
  auto reg = Dinov2(Dinov2Config::for_size("s", true));
  CHECK((reg->register_tokens.sizes() == torch::IntArrayRef{1, 4, 384}));
}

TEST_CASE("Hugging Face and torch.hub files of the same weights give the same encoder") {
  for (const auto ffn : {FeedForwardKind::Mlp, FeedForwardKind::SwiGlu}) {
    for (const bool registers : {false, true}) {
      auto model = random_dinov2(tiny_config(registers, ffn), 7);
      repa::test::ScratchDir dir("repa-dinov2");
      save_dinov2(dir.file("hf.safetensors"), model, Dinov2Naming::HuggingFace);
      save_dinov2(dir.file("hub.safetensors"), model, Dinov2Naming::TorchHub);
      const auto hf_file = repa::io::SafetensorsFile::open(dir.file("hf.safetensors"));
      CHECK(hf_file.contains("encoder.layer.1.attention.attention.value.bias"));
      CHECK(hf_file.contains("embeddings.position_embeddings"));
      CHECK(hf_file.contains(ffn == FeedForwardKind::SwiGlu ? "encoder.layer.0.mlp.weights_in.weight"
                                                            : "encoder.layer.0.mlp.fc1.weight"));
      CHECK(hf_file.contains("embeddings.register_tokens") == registers);

      Dinov2LoadOptions options;
      options.num_heads = 2;  // not stored in checkpoints; the released models' 64-wide heads would give 1
      auto from_hf = load_dinov2_file(dir.file("hf.safetensors"), options);
      auto from_hub = load_dinov2_file(dir.file("hub.safetensors"), options);
      CHECK(from_hf->config().describe() == model->config().describe());
      CHECK(from_hub->config().describe() == model->config().describe());
      auto pixels = torch::randn({2, 3, 56, 70});
      torch::NoGradGuard no_grad;
      const auto a = model->forward(pixels), b = from_hf->forward(pixels), c = from_hub->forward(pixels);
      CHECK(torch::equal(a.patch_tokens, b.patch_tokens));
      CHECK(torch::equal(a.patch_tokens, c.patch_tokens));
      CHECK(torch::equal(a.cls_token, b.cls_token));
      CHECK((a.patch_tokens.sizes() == torch::IntArrayRef{2, 20, 32}));
      CHECK((a.register_tokens.sizes() == torch::IntArrayRef{2, registers ? 4 : 0, 32}));
      CHECK(a.grid_h == 4);
      CHECK(a.grid_w == 5);
    }
  }
}

TEST_CASE("every tensor of a Hugging Face fixture has a torch.hub name") {
  const auto file = repa::io::SafetensorsFile::open(
      repa::test::fixture_path("conformance/dinov2_forward_hf_1_1.safetensors"));
  int mapped = 0;
  for (const auto& name : file.names()) {
    if (name.rfind("param.", 0) != 0) continue;
    CHECK_MESSAGE(!hub_name_of(name.substr(6)).empty(), name);
    ++mapped;
  }
  CHECK(mapped > 20);
  CHECK(hub_name_of("encoder.layer.3.attention.attention.key.weight") == "blocks.3.attn.qkv.weight");
  CHECK(hub_name_of("encoder.layer.0.layer_scale2.lambda1") == "blocks.0.ls2.gamma");
  CHECK(hub_name_of("dinov2.layernorm.weight") == "norm.weight");
  CHECK(hub_name_of("classifier.weight").empty());
}

TEST_CASE("resampling the table once (REPA) equals interpolating per forward with size= and antialias") {
  auto model = random_dinov2(tiny_config(true, FeedForwardKind::Mlp), 3);
  torch::NoGradGuard no_grad;
  const auto interpolated = model->positional_embedding(6, 6, torch::kFloat32);
  CHECK((interpolated.sizes() == torch::IntArrayRef{1, 37, 32}));
  auto pixels = torch::randn({1, 3, 84, 84});
  const auto before = model->forward(pixels);
  model->resample_position_table(6, 6);
  CHECK((model->pos_embed.sizes() == torch::IntArrayRef{1, 37, 32}));
  CHECK(torch::allclose(model->pos_embed, interpolated, 1e-6, 1e-6));
  const auto after = model->forward(pixels);
  CHECK(torch::allclose(before.patch_tokens, after.patch_tokens, 1e-5, 1e-5));
  // At the table's own square grid the table is used as is.
  CHECK(torch::equal(model->positional_embedding(6, 6, torch::kFloat32), model->pos_embed));
}

TEST_CASE("random init is seeded and independent of the global generator; freeze stops gradients") {
  const auto c = tiny_config(false, FeedForwardKind::Mlp);
  torch::manual_seed(1);
  auto a = random_dinov2(c, 42);
  torch::manual_seed(2);
  auto b = random_dinov2(c, 42);
  auto other = random_dinov2(c, 43);
  CHECK(torch::equal(a->blocks[0]->as<Dinov2Block>()->attn->qkv->weight, b->blocks[0]->as<Dinov2Block>()->attn->qkv->weight));
  CHECK_FALSE(torch::equal(a->pos_embed, other->pos_embed));
  CHECK(a->pos_embed.std().item<double>() == doctest::Approx(0.02).epsilon(0.2));
  a->freeze();
  CHECK_FALSE(a->is_training());
  for (const auto& p : a->parameters()) CHECK_FALSE(p.requires_grad());
}

TEST_CASE("inputs that are not a multiple of the patch size are refused with their size") {
  auto model = random_dinov2(tiny_config(false, FeedForwardKind::Mlp), 1);
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 3, 50, 56})), doctest::Contains("50x56"));
}
