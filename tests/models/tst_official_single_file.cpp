// Diffusers weights written under the official single-file names (what `repa-train merge` adds beside the merged
// folder): for the Flux, Chroma and Flux.2 fixtures, reading the written file back through the read tables gives
// every diffusers tensor bit for bit (SD3 and SD3.5, PixArt-Σ and PixArt-α too), and Flux and PixArt models loaded from
// it reproduce the reference output.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/flux_official_names.h"
#include "core/models/flux_transformer.h"
#include "core/models/official_single_file.h"
#include "core/models/pixart_official_names.h"
#include "core/models/pixart_transformer.h"
#include "core/models/sd3_official_names.h"
#include "tests/test_support.h"

using namespace repa;
using test::contains;
using test::error_of;

namespace {

std::map<std::string, torch::Tensor> diffusers_weights(const io::SafetensorsFile& file) {
  std::map<std::string, torch::Tensor> d;
  for (const auto& name : file.names())
    if (name.rfind("param.", 0) == 0) d[name.substr(6)] = file.tensor(name);
  return d;
}

std::vector<std::string> names_of(const std::map<std::string, torch::Tensor>& m) {
  std::vector<std::string> names;
  for (const auto& item : m) names.push_back(item.first);
  return names;
}

void check_same(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  CHECK(names_of(a) == names_of(b));
  for (const auto& item : a) {
    CAPTURE(item.first);
    REQUIRE(b.count(item.first));
    CHECK(torch::equal(item.second, b.at(item.first)));
  }
}

}  // namespace

TEST_CASE("Flux, Chroma, Flux.2 and SD3 weights round-trip through their official names") {
  struct Case {
    const char* fixture;
    const char* family;
    std::map<std::string, torch::Tensor> (*read)(const std::map<std::string, torch::Tensor>&, const std::string&);
  };
  for (const Case c : {Case{"flux_transformer_forward_1_0", "flux", models::flux_official_to_diffusers},
                       Case{"flux_transformer_forward_1_1", "flux", models::flux_official_to_diffusers},
                       Case{"chroma_transformer_forward_1_0", "chroma", models::chroma_official_to_diffusers},
                       Case{"flux2_transformer_forward_1_0", "flux2", models::flux2_official_to_diffusers},
                       Case{"flux2_transformer_forward_1_1", "flux2", models::flux2_official_to_diffusers},
                       Case{"sd3_transformer_forward_1_0", "sd3", models::sd3_official_to_diffusers},
                       Case{"sd3_transformer_forward_1_1", "sd3", models::sd3_official_to_diffusers}}) {
    CAPTURE(c.fixture);
    const auto file =
        io::SafetensorsFile::open(test::fixture_path(std::string("text2image/") + c.fixture + ".safetensors"));
    const auto d = diffusers_weights(file);
    CHECK(models::official_single_file_family(names_of(d)) == c.family);
    const auto official = models::diffusers_to_official(c.family, d, "merged");
    // Official names only: fused tensors, no diffusers name left over.
    CHECK(official.size() < d.size());
    CHECK(official.count(c.family == std::string("sd3") ? "joint_blocks.0.x_block.attn.qkv.weight"
                                                        : "double_blocks.0.img_attn.qkv.weight"));
    CHECK_FALSE(official.count("transformer_blocks.0.attn.to_q.weight"));
    check_same(c.read(official, "merged.safetensors"), d);
  }
}

TEST_CASE("a Flux model loaded from the written official file reproduces the reference output") {
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/flux_transformer_forward_1_1.safetensors"));
  const auto config = models::FluxTransformerConfig::from_json(nlohmann::json::parse(file.metadata().at("config")));
  const auto official = models::diffusers_to_official("flux", diffusers_weights(file), "merged");
  test::ScratchDir dir;
  io::save_safetensors(dir.file("flux1.safetensors"), io::NamedTensors(official.begin(), official.end()));
  models::FluxTransformer model(config);
  model->load_weights(dir.file("flux1.safetensors"));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto in = [&](const std::string& name) {
    return file.contains("in." + name) ? file.tensor("in." + name) : torch::Tensor();
  };
  const auto out = model->forward(in("hidden_states"), in("encoder_hidden_states"), in("pooled_projections"),
                                  in("timestep"), in("img_ids"), in("txt_ids"), in("guidance"));
  CHECK(torch::allclose(out.prediction, file.tensor("out.sample"), 1e-4, 1e-4));
}

TEST_CASE("PixArt weights round-trip through the official names, and a model loaded from them gives the reference") {
  // 1_0 as PixArt-Σ (no micro-conditions), 1_1 as PixArt-α 1024 (csize_embedder / ar_embedder).
  for (const std::string fixture : {"pixart_transformer_forward_1_0", "pixart_transformer_forward_1_1"}) {
    CAPTURE(fixture);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + fixture + ".safetensors"));
    const auto d = diffusers_weights(file);
    REQUIRE(models::official_single_file_family(names_of(d)) == "pixart");
    const auto official = models::diffusers_to_official("pixart", d, "merged");
    const auto& q = d.at("transformer_blocks.1.attn1.to_q.weight");
    CHECK(torch::equal(official.at("blocks.1.attn.qkv.weight"),
                       torch::cat({q, d.at("transformer_blocks.1.attn1.to_k.weight"),
                                   d.at("transformer_blocks.1.attn1.to_v.weight")})));
    CHECK(torch::equal(
        official.at("blocks.2.cross_attn.kv_linear.bias"),
        torch::cat({d.at("transformer_blocks.2.attn2.to_k.bias"), d.at("transformer_blocks.2.attn2.to_v.bias")})));
    CHECK(torch::equal(official.at("final_layer.scale_shift_table"), d.at("scale_shift_table")));
    CHECK(official.count("t_block.1.weight"));
    CHECK(official.count("csize_embedder.mlp.0.weight") == (fixture == "pixart_transformer_forward_1_1" ? 1 : 0));
    // Per block: qkv and kv_linear fused (3 + 2 diffusers tensors → 2), each for weight and bias.
    CHECK(official.size() + 3 * 3 * 2 == d.size());
    check_same(models::pixart_official_to_diffusers(official, "merged.safetensors"), d);

    test::ScratchDir dir;
    io::save_safetensors(dir.file("pixart.safetensors"), io::NamedTensors(official.begin(), official.end()));
    models::PixArtTransformer model(
        models::PixArtTransformerConfig::from_diffusers(nlohmann::json::parse(*file.meta("config"))));
    models::load_pixart_weights(model, dir.file("pixart.safetensors"));
    model->eval();
    models::PixArtInputs in;
    const auto input = [&](const std::string& name) {
      return file.contains("in." + name) ? file.tensor("in." + name) : torch::Tensor();
    };
    in.hidden_states = input("hidden_states");
    in.encoder_hidden_states = input("encoder_hidden_states");
    in.timestep = input("timestep");
    in.encoder_attention_mask = input("encoder_attention_mask");
    in.resolution = input("resolution");
    in.aspect_ratio = input("aspect_ratio");
    torch::NoGradGuard no_grad;
    CHECK(torch::allclose(model->forward(in, 1).prediction, file.tensor("out.sample"), 1e-4, 1e-4));
  }
}

TEST_CASE("Sana and AuraFlow weights are recognised as families whose official names are not written") {
  const std::vector<std::pair<std::string, std::string>> cases = {{"sana_transformer_forward_1_0", "Sana"},
                                                                  {"auraflow_transformer_forward_1_0", "AuraFlow"}};
  for (const auto& [fixture, family] : cases) {
    CAPTURE(fixture);
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + fixture + ".safetensors"));
    const auto names = names_of(diffusers_weights(file));
    CHECK(models::official_single_file_family(names) == "");
    CHECK(models::unwritten_single_file_family(names) == family);
  }
  const auto pixart =
      io::SafetensorsFile::open(test::fixture_path("text2image/pixart_transformer_forward_1_0.safetensors"));
  CHECK(models::unwritten_single_file_family(names_of(diffusers_weights(pixart))) == "");
}

TEST_CASE("writing official names: missing and unknown tensors and families without a table are named") {
  const auto file =
      io::SafetensorsFile::open(test::fixture_path("text2image/flux_transformer_forward_1_0.safetensors"));
  auto d = diffusers_weights(file);
  CHECK(models::official_single_file_family({"conv_in.weight", "down_blocks.0.resnets.0.conv1.weight"}) == "");
  auto extra = d;
  extra["transformer_blocks.0.attn.to_q.lora_A.weight"] = torch::zeros({2});
  CHECK(contains(error_of([&] { models::diffusers_to_official("flux", extra, "m.safetensors"); }),
                 "has no official name for: transformer_blocks.0.attn.to_q.lora_A.weight"));
  auto missing = d;
  missing.erase("single_transformer_blocks.1.proj_mlp.bias");
  CHECK(contains(error_of([&] { models::diffusers_to_official("flux", missing, "m.safetensors"); }),
                 "needs single_transformer_blocks.1.proj_mlp.bias, which is missing"));
  CHECK(contains(error_of([&] { models::diffusers_to_official("sdxl", d, "m.safetensors"); }), "family 'sdxl'"));
}
