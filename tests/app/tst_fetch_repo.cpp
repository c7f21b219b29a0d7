// `repa-train fetch OWNER/NAME` end to end against a fake Hub on 127.0.0.1 named by HF_ENDPOINT: the per-file
// progress lines, the cache folder, a repeated fetch that downloads nothing, --include and --dest, a gated
// repository's advice with and without the token file, and options that belong to model repositories only.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/encoders/fake_hub_server.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using repa::test::contains;
using repa::test::FakeHubServer;
using repa::test::ScratchDir;

namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr together
};

// repa-train with the Hub environment pointed at the fake server and the scratch folder, nothing inherited.
Result run(const FakeHubServer& hub, const ScratchDir& dir, const std::string& args, const std::string& env = "") {
  const std::string command = "env -u HF_TOKEN -u HF_TOKEN_PATH HF_ENDPOINT=" + hub.endpoint() +
                              " XDG_CACHE_HOME=" + dir.file("cache") + " HF_HOME=" + dir.file("hf") + " " + env + " " +
                              REPA_TRAIN_EXE + " " + (contains(args, "--preset") ? "" : "fetch ") + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (const auto n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

FakeHubServer::Repo small_flux_repo() {
  FakeHubServer::Repo r;
  r.files = {
      {"model_index.json", "{}"},
      {"flux1-dev.safetensors", std::string(900, 'f')},
      {"transformer/config.json", "{}"},
      {"transformer/diffusion_pytorch_model.safetensors", std::string(5000, 't')},
      {"vae/config.json", "{}"},
      {"vae/diffusion_pytorch_model.safetensors", std::string(3000, 'v')},
      {"text_encoder/config.json", "{}"},
      {"text_encoder/model.safetensors", std::string(2000, 'c')},
      {"text_encoder_2/config.json", "{}"},
      {"text_encoder_2/model.safetensors", std::string(2500, 'T')},
      {"tokenizer/vocab.json", "{}"},
      {"tokenizer/merges.txt", "#version: 0.2\n"},
      {"tokenizer_2/spiece.model", std::string(100, 's')},
      {"scheduler/scheduler_config.json", "{}"},
  };
  return r;
}

}  // namespace

TEST_CASE("fetch of a model repository fills the cache folder and a second fetch downloads nothing") {
  ScratchDir dir("repa-fetch-cli");
  FakeHubServer hub;
  const auto repo = small_flux_repo();
  hub.add_repo("black-forest-labs/flux-mini", repo);
  const auto first = run(hub, dir, "black-forest-labs/flux-mini --family flux");
  CHECK(first.code == 0);
  CHECK(contains(first.output, "[1/13] model_index.json"));
  CHECK(contains(first.output, "[13/13] vae/diffusion_pytorch_model.safetensors"));
  CHECK(contains(first.output, "token: none"));
  CHECK(contains(first.output, "saved 13 files"));
  const auto folder = dir.file("cache/repa-studio/models/black-forest-labs/flux-mini");
  CHECK(repa::test::read_bytes(folder + "/transformer/diffusion_pytorch_model.safetensors") ==
        repo.files.at("transformer/diffusion_pytorch_model.safetensors"));
  CHECK(repa::test::read_bytes(folder + "/tokenizer_2/spiece.model") == repo.files.at("tokenizer_2/spiece.model"));
  CHECK_FALSE(fs::exists(folder + "/flux1-dev.safetensors"));  // the single file is not a diffusers folder's part

  const auto second = run(hub, dir, "black-forest-labs/flux-mini --family flux");
  CHECK(second.code == 0);
  CHECK(contains(second.output, "(already complete)"));
  CHECK(contains(second.output, "0 downloaded"));
  CHECK(contains(second.output, "13 already complete"));
}

TEST_CASE("fetch --include --dest takes only the matching files") {
  ScratchDir dir("repa-fetch-cli");
  FakeHubServer hub;
  hub.add_repo("o/m", small_flux_repo());
  const auto result =
      run(hub, dir, "o/m --include 'text_encoder_2/*' --include flux1-dev.safetensors --dest " + dir.file("only"));
  CHECK(result.code == 0);
  CHECK(contains(result.output, "saved 3 files"));
  CHECK(fs::exists(dir.file("only/flux1-dev.safetensors")));
  CHECK(fs::exists(dir.file("only/text_encoder_2/model.safetensors")));
  CHECK_FALSE(fs::exists(dir.file("only/transformer")));
}

TEST_CASE("a gated repository: the licence advice without a token, the token file's token with it") {
  ScratchDir dir("repa-fetch-cli");
  FakeHubServer hub;
  auto repo = small_flux_repo();
  repo.gated = true;
  hub.add_repo("o/gated", repo);
  hub.set_accepted_token("hf_secret");
  const auto refused = run(hub, dir, "o/gated --family flux");
  CHECK(refused.code == 2);
  CHECK(contains(refused.output, "gated or private"));
  CHECK(contains(refused.output, "Accept its licence at " + hub.endpoint() + "/o/gated"));

  fs::create_directories(dir.file("hf"));
  repa::test::write_bytes(dir.file("hf/token"), "hf_secret\n");
  const auto allowed = run(hub, dir, "o/gated --family flux");
  CHECK(allowed.code == 0);
  CHECK(contains(allowed.output, "token: " + dir.file("hf/token")));
  CHECK_FALSE(contains(allowed.output, "hf_secret"));  // the token itself is never printed

  const auto wrong = run(hub, dir, "o/gated --family flux", "HF_TOKEN=hf_wrong");
  CHECK(wrong.code == 2);
  CHECK(contains(wrong.output, "the token from $HF_TOKEN"));
}

TEST_CASE("fetch names bad repository options") {
  ScratchDir dir("repa-fetch-cli");
  FakeHubServer hub;
  hub.add_repo("o/m", small_flux_repo());
  const auto encoder_with_family = run(hub, dir, "dinov2_s --family sdxl");
  CHECK(encoder_with_family.code == 2);
  CHECK(contains(encoder_with_family.output, "apply to a model repository"));
  const auto family = run(hub, dir, "o/m --family sd9");
  CHECK(family.code == 2);
  CHECK(contains(family.output, "model family 'sd9'"));
  const auto missing = run(hub, dir, "o/nothing --family flux");
  CHECK(missing.code == 2);
  CHECK(contains(missing.output, "no model repository o/nothing"));
  const auto wrong_family = run(hub, dir, "o/m --family sdxl");
  CHECK(wrong_family.code == 2);
  CHECK(contains(wrong_family.output, "has no unet/"));
}

TEST_CASE(
    "a run whose pretrained_model_name_or_path is a repo id: the fetch command when absent, the folder once fetched") {
  ScratchDir dir("repa-fetch-cli");
  FakeHubServer hub;
  const std::string run = "--threads 1 run --preset demo --set output_dir=" + dir.file("runs") +
                          " --set max_train_steps=1 --set validation_step_interval=0" +
                          " --set pretrained_model_name_or_path=o/unfetched";
  const auto absent = ::run(hub, dir, run);
  CHECK(absent.code == 2);
  CHECK(contains(absent.output, "download it with `repa-train fetch o/unfetched`"));
  // A fetched folder is what the run then loads (here not a SiT checkpoint, so its loader names the folder).
  hub.add_repo("o/unfetched", small_flux_repo());
  REQUIRE(::run(hub, dir, "o/unfetched --family flux").code == 0);
  const auto fetched = ::run(hub, dir, run);
  CHECK_FALSE(contains(fetched.output, "repa-train fetch"));
  CHECK(contains(fetched.output, dir.file("cache/repa-studio/models/o/unfetched")));
}

TEST_CASE("fetch --config takes the repository and the family of a run config") {
  ScratchDir dir("repa-fetch-cli");
  FakeHubServer hub;
  hub.add_repo("o/m", small_flux_repo());
  repa::test::write_bytes(
      dir.file("run.json"),
      R"({"--model_family": "flux", "--pretrained_model_name_or_path": "o/m", "max_train_steps": 5})");
  const auto result = run(hub, dir, "--config " + dir.file("run.json"));
  CHECK(result.code == 0);
  CHECK(contains(result.output, "saved 13 files of o/m"));
  CHECK(fs::exists(dir.file("cache/repa-studio/models/o/m/transformer/diffusion_pytorch_model.safetensors")));
  repa::test::write_bytes(dir.file("local.json"), R"({"pretrained_model_name_or_path": "/models/sd15"})");
  const auto local = run(hub, dir, "--config " + dir.file("local.json"));
  CHECK(local.code == 2);
  CHECK(contains(local.output, "'/models/sd15' is not a Hub repository id"));
}
