// `repa-train merge` of an SD 1.x / SDXL LoRA into a pipeline's unet/: beside the merged diffusers folder it writes
// the LDM/SGM single file (A1111 / ComfyUI names) with the merged UNet and the pipeline's VAE and text encoders,
// which reads back as exactly those tensors; a standalone UNet folder gives the UNet alone.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "core/io/safetensors.h"
#include "core/models/sd_pipeline_folder.h"
#include "core/train/tiny_pipeline.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace repa;

namespace {

int run_tool(const std::string& args) {
  const int status = std::system((std::string(REPA_TRAIN_EXE) + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

models::TensorMap read_all(const std::string& path) {
  const auto file = io::SafetensorsFile::open(path);
  models::TensorMap out;
  for (const auto& name : file.names()) out[name] = file.tensor(name);
  return out;
}

void check_same(const models::TensorMap& a, const models::TensorMap& b) {
  CHECK(a.size() == b.size());
  for (const auto& [name, t] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name));
    CHECK(torch::equal(t, b.at(name)));
  }
}

}  // namespace

TEST_CASE("merge of an SD 1.x and an SDXL LoRA also writes the LDM single file, which reads back as the merge") {
  for (const std::string family : {"sd1x", "sdxl"}) {
    CAPTURE(family);
    test::ScratchDir dir;
    train::write_tiny_sd_pipeline(dir.file("pipe"), family, test::fixture_path("tokenizers/clip"), 11);
    const auto base = read_all(dir.file("pipe/unet/diffusion_pytorch_model.safetensors"));
    // A rank-2 adapter (alpha 4: scaling 2) on one self-attention query and one cross-attention key.
    torch::manual_seed(4);
    io::NamedTensors lora;
    const std::vector<std::string> modules = {"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
                                              "up_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k"};
    for (const auto& m : modules) {
      const auto& w = base.at(m + ".weight");
      lora.emplace_back("unet." + m + ".lora_A.weight", torch::randn({2, w.size(1)}));
      lora.emplace_back("unet." + m + ".lora_B.weight", torch::randn({w.size(0), 2}));
      lora.emplace_back("unet." + m + ".alpha", torch::tensor(4.0f).reshape({}));
    }
    io::save_safetensors(dir.file("lora.safetensors"), lora);
    REQUIRE(run_tool("merge --base " + dir.file("pipe/unet") + " --lora " + dir.file("lora.safetensors") + " --out " +
                     dir.file("merged")) == 0);
    const auto merged = read_all(dir.file("merged/diffusion_pytorch_model.safetensors"));
    CHECK(torch::allclose(merged.at(modules[0] + ".weight"),
                          base.at(modules[0] + ".weight") + 2.0 * lora[1].second.matmul(lora[0].second), 1e-5, 1e-5));
    REQUIRE(fs::exists(dir.file("merged.safetensors")));
    const auto single = read_all(dir.file("merged.safetensors"));
    CHECK(single.count("model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn1.to_q.weight"));
    CHECK(single.count("first_stage_model.decoder.conv_out.weight"));
    CHECK(single.count(family == "sdxl" ? "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"
                                        : "cond_stage_model.transformer.text_model.final_layer_norm.weight"));
    // Back through the read tables: the merged UNet bit for bit, the pipeline's VAE and text encoders unchanged.
    const auto back = models::read_ldm_single_file(dir.file("merged.safetensors"), family);
    check_same(merged, back.weights.at("unet"));
    const auto pipeline = models::read_sd_pipeline_folder(dir.file("pipe"), family);
    for (const std::string c : {"vae", "text_encoder"}) check_same(pipeline.weights.at(c), back.weights.at(c));
    if (family == "sdxl") check_same(pipeline.weights.at("text_encoder_2"), back.weights.at("text_encoder_2"));
    CHECK_FALSE(torch::equal(back.weights.at("unet").at(modules[1] + ".weight"), base.at(modules[1] + ".weight")));

    // A UNet folder outside a pipeline: the UNet alone, to the file --single-file names.
    fs::copy(dir.file("pipe/unet"), dir.file("alone"));
    REQUIRE(run_tool("merge --base " + dir.file("alone") + " --lora " + dir.file("lora.safetensors") + " --out " +
                     dir.file("m2") + " --single-file " + dir.file("unet-only.safetensors")) == 0);
    const auto alone = read_all(dir.file("unet-only.safetensors"));
    CHECK(alone.size() == merged.size());
    for (const auto& item : alone) CHECK(item.first.rfind("model.diffusion_model.", 0) == 0);
  }
}
