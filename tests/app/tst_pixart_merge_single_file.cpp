// PixArt's official single file from `repa-train merge`: the tiny pipeline's transformer goes diffusers → official →
// diffusers bit for bit under exactly the names of diffusers' convert_pixart_sigma_to_diffusers.py; a merged LoRA is
// written beside the diffusers folder as OUT.safetensors in those names, which reads back as the merged weights and
// gives the same prediction; Sana and AuraFlow weights are merged under their diffusers names only, and asking them for
// a single file is refused with the reason.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/models/official_single_file.h"
#include "core/models/pixart_official_names.h"
#include "core/models/pixart_transformer.h"
#include "core/train/tiny_pipeline_pixart.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace repa;
using TensorMap = std::map<std::string, torch::Tensor>;

namespace {

// The exit status of repa-train; its stdout and stderr go to `log` (when given).
int run_tool(const std::string& args, const std::string& log = "/dev/null") {
  const int status = std::system((std::string(REPA_TRAIN_EXE) + " " + args + " > " + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TensorMap read_all(const std::string& path) {
  const auto file = io::SafetensorsFile::open(path);
  TensorMap out;
  for (const auto& name : file.names()) out[name] = file.tensor(name);
  return out;
}

std::vector<std::string> names_of(const TensorMap& m) {
  std::vector<std::string> names;
  for (const auto& item : m) names.push_back(item.first);
  return names;
}

void check_same(const TensorMap& a, const TensorMap& b) {
  CHECK(names_of(a) == names_of(b));
  for (const auto& [name, t] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name));
    CHECK(torch::equal(t, b.at(name)));
  }
}

// The official names of a PixArt checkpoint with `layers` blocks, listed as the PixArt repositories' modules name them
// (what convert_pixart_sigma_to_diffusers.py pops), without pos_embed and y_embedder.y_embedding.
std::set<std::string> official_names(int64_t layers, bool micro_conditions) {
  std::set<std::string> names = {"final_layer.scale_shift_table"};
  std::vector<std::string> linears = {"x_embedder.proj",   "y_embedder.y_proj.fc1", "y_embedder.y_proj.fc2",
                                      "t_embedder.mlp.0",  "t_embedder.mlp.2",      "t_block.1",
                                      "final_layer.linear"};
  if (micro_conditions)
    for (const std::string m :
         {"csize_embedder.mlp.0", "csize_embedder.mlp.2", "ar_embedder.mlp.0", "ar_embedder.mlp.2"})
      linears.push_back(m);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    names.insert(b + "scale_shift_table");
    for (const std::string m : {"attn.qkv", "attn.proj", "cross_attn.q_linear", "cross_attn.kv_linear",
                                "cross_attn.proj", "mlp.fc1", "mlp.fc2"})
      linears.push_back(b + m);
  }
  for (const auto& l : linears) {
    names.insert(l + ".weight");
    names.insert(l + ".bias");
  }
  return names;
}

std::string spiece() {
  return test::fixture_path("tokenizers/t5/spiece.model");
}

}  // namespace

TEST_CASE("pixart: the tiny transformer round-trips diffusers → official → diffusers for every tensor") {
  for (const bool micro : {false, true}) {
    CAPTURE(micro);
    test::ScratchDir dir;
    train::TinyPixArtOptions options;
    options.additional_conditions = micro;
    train::write_tiny_pixart_pipeline(dir.file("pipe"), spiece(), 5, options);
    const auto d = read_all(dir.file("pipe/transformer/diffusion_pytorch_model.safetensors"));
    REQUIRE(models::official_single_file_family(names_of(d)) == "pixart");
    const auto official = models::diffusers_to_official("pixart", d, "pipe/transformer");
    const auto names = names_of(official);
    CHECK(std::set<std::string>(names.begin(), names.end()) == official_names(options.num_layers, micro));
    // The fused rows are [q; k; v] and [k; v], as the PixArt modules split them.
    const std::string b = "transformer_blocks.2.";
    CHECK(torch::equal(
        official.at("blocks.2.attn.qkv.bias"),
        torch::cat({d.at(b + "attn1.to_q.bias"), d.at(b + "attn1.to_k.bias"), d.at(b + "attn1.to_v.bias")})));
    CHECK(torch::equal(official.at("blocks.2.cross_attn.kv_linear.weight"),
                       torch::cat({d.at(b + "attn2.to_k.weight"), d.at(b + "attn2.to_v.weight")})));
    CHECK(torch::equal(official.at("t_block.1.weight"), d.at("adaln_single.linear.weight")));
    CHECK(torch::equal(official.at("y_embedder.y_proj.fc2.bias"), d.at("caption_projection.linear_2.bias")));
    // Back, also with what the released checkpoints add (the fixed pos_embed, the null caption) and their prefix.
    check_same(models::pixart_official_to_diffusers(official, "official"), d);
    TensorMap released;
    for (const auto& [name, t] : official) released["model.diffusion_model." + name] = t;
    released["pos_embed"] = torch::zeros({1, 64, 24});
    released["y_embedder.y_embedding"] = torch::zeros({300, 16});
    check_same(models::pixart_official_to_diffusers(released, "released"), d);
  }
}

TEST_CASE("pixart: a bad official file and incomplete diffusers weights are named") {
  test::ScratchDir dir;
  train::write_tiny_pixart_pipeline(dir.file("pipe"), spiece(), 6);
  const auto d = read_all(dir.file("pipe/transformer/diffusion_pytorch_model.safetensors"));
  auto official = models::diffusers_to_official("pixart", d, "merged");
  auto cut = official;
  cut["blocks.1.cross_attn.kv_linear.weight"] = cut.at("blocks.1.cross_attn.kv_linear.weight").narrow(0, 0, 30);
  CHECK(test::contains(test::error_of([&] { models::pixart_official_to_diffusers(cut, "cut.safetensors"); }),
                       "cut.safetensors: blocks.1.cross_attn.kv_linear.weight has 30 rows, expected 48"));
  cut = official;
  cut.erase("blocks.0.mlp.fc2.bias");
  CHECK(test::contains(test::error_of([&] { models::pixart_official_to_diffusers(cut, "cut.safetensors"); }),
                       "the PixArt single file lacks blocks.0.mlp.fc2.bias"));
  auto partial = d;
  partial.erase("transformer_blocks.1.attn1.to_v.weight");
  CHECK(test::contains(test::error_of([&] { models::diffusers_to_official("pixart", partial, "m.safetensors"); }),
                       "writing the PixArt single file needs transformer_blocks.1.attn1.to_v.weight"));
}

TEST_CASE("pixart: merge of a LoRA also writes the official single file, which reads back as the merge") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  train::write_tiny_pixart_pipeline(dir.file("pipe"), spiece(), 7);
  const auto base = read_all(dir.file("pipe/transformer/diffusion_pytorch_model.safetensors"));
  // A rank-2 adapter (alpha 4: scaling 2) on the middle third of a fused qkv, the second half of a fused kv_linear
  // and a feed-forward input.
  torch::manual_seed(8);
  io::NamedTensors lora;
  const std::vector<std::string> modules = {"transformer_blocks.0.attn1.to_k", "transformer_blocks.1.attn2.to_v",
                                            "transformer_blocks.2.ff.net.0.proj"};
  for (const auto& m : modules) {
    const auto& w = base.at(m + ".weight");
    lora.emplace_back("transformer." + m + ".lora_A.weight", torch::randn({2, w.size(1)}));
    lora.emplace_back("transformer." + m + ".lora_B.weight", torch::randn({w.size(0), 2}));
    lora.emplace_back("transformer." + m + ".alpha", torch::tensor(4.0f).reshape({}));
  }
  io::save_safetensors(dir.file("lora.safetensors"), lora);
  REQUIRE(run_tool("merge --base " + dir.file("pipe/transformer") + " --lora " + dir.file("lora.safetensors") +
                   " --out " + dir.file("merged")) == 0);
  CHECK(fs::exists(dir.file("merged/config.json")));
  const auto merged = read_all(dir.file("merged/diffusion_pytorch_model.safetensors"));
  for (std::size_t i = 0; i < modules.size(); ++i) {
    CAPTURE(modules[i]);
    const auto a = lora[3 * i].second, b = lora[3 * i + 1].second;
    CHECK(torch::allclose(merged.at(modules[i] + ".weight"), base.at(modules[i] + ".weight") + 2.0 * b.matmul(a), 1e-5,
                          1e-5));
  }
  REQUIRE(fs::exists(dir.file("merged.safetensors")));
  const auto single = read_all(dir.file("merged.safetensors"));
  const auto names = names_of(single);
  CHECK(std::set<std::string>(names.begin(), names.end()) == official_names(3, false));
  // The merged to_k is the middle third of the fused qkv; the merged to_v the second half of kv_linear.
  CHECK(torch::equal(single.at("blocks.0.attn.qkv.weight").narrow(0, 24, 24),
                     merged.at("transformer_blocks.0.attn1.to_k.weight")));
  CHECK(torch::equal(single.at("blocks.1.cross_attn.kv_linear.weight").narrow(0, 24, 24),
                     merged.at("transformer_blocks.1.attn2.to_v.weight")));
  check_same(models::pixart_official_to_diffusers(single, "merged.safetensors"), merged);

  // A model loaded from the single file predicts what one loaded from the merged folder does.
  const auto config = models::PixArtTransformerConfig::from_diffusers(
      nlohmann::json::parse(test::read_bytes(dir.file("merged/config.json"))));
  models::PixArtTransformer from_folder(config), from_file(config);
  models::load_pixart_weights(from_folder, dir.file("merged"));
  models::load_pixart_weights(from_file, dir.file("merged.safetensors"));
  from_folder->eval();
  from_file->eval();
  models::PixArtInputs in;
  in.hidden_states = torch::randn({2, 4, 16, 16});
  in.encoder_hidden_states = torch::randn({2, 5, 16});
  in.timestep = torch::tensor({10.0, 900.0});
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(from_folder->forward(in, 1).prediction, from_file->forward(in, 1).prediction));

  // --single-file names the file (also beside a one-file OUT); --no-single-file writes none.
  REQUIRE(run_tool("merge --base " + dir.file("pipe/transformer") + " --lora " + dir.file("lora.safetensors") +
                   " --out " + dir.file("one.safetensors") + " --single-file " + dir.file("pixart.safetensors")) == 0);
  check_same(read_all(dir.file("pixart.safetensors")), single);
  REQUIRE(run_tool("merge --base " + dir.file("pipe/transformer") + " --lora " + dir.file("lora.safetensors") +
                   " --out " + dir.file("plain") + " --no-single-file") == 0);
  CHECK_FALSE(fs::exists(dir.file("plain.safetensors")));
}

TEST_CASE("merge of a Sana or AuraFlow LoRA writes the diffusers weights only and says why there is no single file") {
  struct Case {
    std::string fixture, family, module;
  };
  const std::vector<Case> cases = {
      {"sana_transformer_forward_1_0", "Sana", "transformer_blocks.0.attn1.to_q"},
      {"auraflow_transformer_forward_1_0", "AuraFlow", "joint_transformer_blocks.0.attn.to_q"}};
  for (const auto& [fixture, family, module] : cases) {
    CAPTURE(family);
    test::ScratchDir dir;
    const auto file = io::SafetensorsFile::open(test::fixture_path("text2image/" + fixture + ".safetensors"));
    io::NamedTensors base;
    for (const auto& name : file.names())
      if (name.rfind("param.", 0) == 0) base.emplace_back(name.substr(6), file.tensor(name));
    fs::create_directories(dir.file("base"));
    io::save_safetensors(dir.file("base/diffusion_pytorch_model.safetensors"), base);
    io::save_safetensors(dir.file("lora.safetensors"),
                         {{"transformer." + module + ".lora_A.weight", torch::randn({2, 32})},
                          {"transformer." + module + ".lora_B.weight", torch::randn({32, 2})}});
    const auto args =
        "merge --base " + dir.file("base") + " --lora " + dir.file("lora.safetensors") + " --out " + dir.file("merged");
    REQUIRE(run_tool(args, dir.file("log")) == 0);
    CHECK(fs::exists(dir.file("merged/diffusion_pytorch_model.safetensors")));
    CHECK_FALSE(fs::exists(dir.file("merged.safetensors")));
    CHECK(test::contains(test::read_bytes(dir.file("log")), family + " weights have no official single-file writer"));
    CHECK(run_tool(args + " --single-file " + dir.file("single.safetensors"), dir.file("log")) == 2);
    const auto message = test::read_bytes(dir.file("log"));
    CHECK(test::contains(message, "--single-file: the merged weights are " + family +
                                      " weights, which have no official single-file writer"));
    CHECK(test::contains(message, dir.file("merged/diffusion_pytorch_model.safetensors")));
    CHECK_FALSE(fs::exists(dir.file("single.safetensors")));
  }
}
