// repa-train bench-lora on a tiny text-conditioned UNet: the LoRA count is the hand-counted one, AdamW holds two
// fp32 moments per trained value, full training trains every base parameter, and the peak is at least the size
// after building. Bad options are named.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/test_support.h"

namespace {

struct Result {
  int code;
  std::string output;
};

Result run(const std::string& args) {
  FILE* pipe = popen((std::string(REPA_TRAIN_EXE) + " bench-lora " + args + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (const auto n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Channels 32 and 64: a cross-attention down block (1 transformer), the mid block (1) and a cross-attention up
// block (2 transformers), 32-wide text.
const char* kTinyUnet = R"({"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64],
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
  "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": 8, "norm_num_groups": 32,
  "in_channels": 4, "out_channels": 4})";

}  // namespace

TEST_CASE("bench-lora counts the adapters, AdamW's state and the resident memory of a tiny UNet step") {
  repa::test::ScratchDir dir;
  repa::test::write_bytes(dir.file("unet.json"), kTinyUnet);
  const auto lora =
      run("--unet-config " + dir.file("unet.json") + " --rank 4 --latent 16 --steps 1 --threads 1 --json");
  REQUIRE(lora.code == 0);
  const auto l = nlohmann::json::parse(lora.output);
  // Rank r on to_q, to_k, to_v, to_out.0 of attn1 and attn2: r·(in + out) each. At 32 channels a transformer has
  // 8 of 4·64 = 2048; three of them. The mid block at 64: attn1 4·4·128 = 2048, attn2 512 + 384 + 384 + 512.
  CHECK(l["trainable_parameters"] == 3 * 2048 + 2048 + 1792);
  CHECK(l["adapted_modules"] == 4 * 8);
  CHECK(l["optimizer_state_bytes"] == 8 * l["trainable_parameters"].get<int64_t>());
  CHECK(l["peak_resident_bytes"].get<double>() >= l["resident_after_build_bytes"].get<double>());

  const auto full = run("--unet-config " + dir.file("unet.json") + " --mode full --latent 16 --steps 1 --json");
  REQUIRE(full.code == 0);
  const auto f = nlohmann::json::parse(full.output);
  CHECK(f["trainable_parameters"] == f["base_parameters"]);
  CHECK(f["base_parameters"] == l["base_parameters"]);
  CHECK(f["optimizer_state_bytes"] == 8 * f["base_parameters"].get<int64_t>());

  CHECK(run("--unet-config " + dir.file("unet.json") + " --mode half").code == 2);
  CHECK(run("--mode lora").output.find("needs --unet-config") != std::string::npos);
  CHECK(run("--unet-config " + dir.file("unet.json") + " --rank x").output.find("--rank needs a whole number") !=
        std::string::npos);
}
