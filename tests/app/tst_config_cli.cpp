// repa-train validate / export / options: exit codes, every problem listed, the SimpleTuner export and its
// fixed point, the options listing and docs.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/test_support.h"

using nlohmann::json;

namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr together
};

// `stderr_too`: stdout and stderr together; else stdout alone.
Result run(const std::string& args, bool stderr_too = true) {
  const std::string command = std::string(REPA_TRAIN_EXE) + " " + args + (stderr_too ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (const auto n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool has(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

std::string example(const std::string& name) {
  return repa::test::source_path("tests/config/data/" + name);
}

}  // namespace

TEST_CASE("validate accepts a SimpleTuner config and prints the resolved config") {
  auto result = run("validate " + example("flux-lora.json"));
  CHECK(result.code == 0);
  CHECK(has(result.output, "flux-lora.json: valid"));
  CHECK(has(result.output, "info: 'validation_steps' is SimpleTuner's older name for 'validation_step_interval'"));
  CHECK(has(result.output,
            "SimpleTuner options the studio does not use, kept for export: base_model_precision, controlnet"));

  result = run("validate " + example("flux-lora.json") + " --preset flux --set crepa_lambda=0.25 --print", false);
  REQUIRE(result.code == 0);
  const auto resolved = json::parse(result.output);
  CHECK(resolved["crepa_lambda"] == 0.25);
  CHECK(resolved["crepa_enabled"] == true);  // from the preset
  CHECK(resolved["learning_rate"] == 1e-4);  // from the file
  CHECK(resolved["studio"]["projector"] == "layernorm_linear");
}

TEST_CASE("validate lists every problem and exits with 2") {
  repa::test::ScratchDir dir;
  repa::test::write_bytes(dir.file("bad.json"), R"({"crepa_lambda": -1, "loss_type": "l3", "seed": "x",
      "learning_rat": 0.1, "model_family": "flux", "urepa_enabled": true})");
  const auto result = run("validate " + dir.file("bad.json"));
  CHECK(result.code == 2);
  CHECK(has(result.output, "5 problems in " + dir.file("bad.json")));
  CHECK(has(result.output, "crepa_lambda: -1.0 is below the minimum 0"));
  CHECK(has(result.output, "loss_type: \"l3\" is not one of l2, huber, smooth_l1"));
  CHECK(has(result.output, "seed: \"x\" is not a whole number"));
  CHECK(has(result.output, "learning_rat: unknown option (did you mean \"learning_rate\"?)"));
  CHECK(has(result.output, "urepa_enabled: true, but model_family \"flux\" is a transformer"));

  CHECK(run("validate " + dir.file("missing.json")).code == 2);
  CHECK(run("validate --preset nosuch").code == 2);
  CHECK(run("validate --preset demo --set crepa_lambda").code == 2);
}

TEST_CASE("validate --check-paths looks at the files, plain validate does not") {
  repa::test::ScratchDir dir;
  const std::string set = " --set studio.dataset_dir=" + dir.file("nowhere");
  CHECK(run("validate --preset demo" + set).code == 0);
  const auto result = run("validate --preset demo --check-paths" + set);
  CHECK(result.code == 2);
  CHECK(has(result.output, "studio.dataset_dir: '" + dir.file("nowhere") + "' does not exist"));
  CHECK(run("validate --preset demo --check-paths --set studio.dataset_dir=" + dir.path().string() +
            " --set output_dir=" + dir.file("out"))
            .code == 0);
}

TEST_CASE("export for SimpleTuner: bare names, dataset file, what was dropped; a fixed point") {
  repa::test::ScratchDir dir;
  const std::string first = dir.file("first"), second = dir.file("second");
  auto result = run("export " + example("sdxl-lokr.json") + " --format simpletuner --out " + first +
                    " --set urepa_enabled=true --set studio.dataset_dir=/data/photos --set studio.sit_size=L");
  REQUIRE(result.code == 0);
  CHECK(has(result.output, "wrote " + first + "/multidatabackend.json"));
  CHECK(has(result.output, "kept:    lycoris_config"));
  CHECK(has(result.output, "dropped: studio.sit_size = \"L\": studio-only setting"));
  const auto config = json::parse(repa::test::read_bytes(first + "/config.json"));
  CHECK(config["urepa_enabled"] == true);
  CHECK(config["checkpoint_step_interval"] == 500);
  CHECK(config["lycoris_config"] == "config/lycoris_config.json");
  CHECK(config["data_backend_config"] == first + "/multidatabackend.json");
  CHECK_FALSE(config.contains("studio"));
  const auto backends = json::parse(repa::test::read_bytes(first + "/multidatabackend.json"));
  CHECK(backends[0]["instance_data_dir"] == "/data/photos");

  result = run("export " + first + "/config.json --format simpletuner --out " + second);
  REQUIRE(result.code == 0);
  CHECK(repa::test::read_bytes(second + "/config.json") == repa::test::read_bytes(first + "/config.json"));

  result = run("export " + example("flux-lora.json") + " --format studio --out " + dir.file("studio"));
  REQUIRE(result.code == 0);
  const auto studio = json::parse(repa::test::read_bytes(dir.file("studio/config.json")));
  CHECK(studio["studio"]["architecture"] == "sit");
  result = run("export " + dir.file("studio/config.json") + " --format studio --out " + dir.file("studio2"));
  REQUIRE(result.code == 0);
  CHECK(repa::test::read_bytes(dir.file("studio2/config.json")) ==
        repa::test::read_bytes(dir.file("studio/config.json")));

  CHECK(run("export " + example("flux-lora.json") + " --format kohya --out " + dir.file("x")).code == 2);
  CHECK(run("export " + example("flux-legacy.json") + " --format simpletuner --out " + dir.file("x")).code == 2);
}

TEST_CASE("options lists every option; --presets the presets; --json parses; --markdown is docs/options.md") {
  auto result = run("options");
  CHECK(result.code == 0);
  CHECK(has(result.output, "crepa_lambda  float  default 0.5  [≥ 0]"));
  CHECK(has(result.output, "studio.sit_size  choice  default \"B\"  [\"S\", \"B\", \"L\", \"XL\", \"custom\"]"));
  result = run("options --presets");
  CHECK(has(result.output, "sit-xl-2"));
  CHECK(has(result.output, "demo"));
  result = run("options --json");
  REQUIRE(result.code == 0);
  const auto list = json::parse(result.output);
  CHECK(list.size() > 150);
  result = run("options --markdown");
  CHECK(result.output == repa::test::read_bytes(repa::test::source_path("docs/options.md")));
}

TEST_CASE("schedule prints the planned weight per step") {
  auto result =
      run("schedule --preset demo --set crepa_lambda=0.5 --set crepa_warmup_steps=10 --set crepa_cutoff_step=60 "
          "--steps 0:80:5");
  REQUIRE(result.code == 0);
  CHECK(result.output.rfind("step,crepa_weight\n0,0\n5,0.25\n10,0.5\n15,0.5\n", 0) == 0);
  CHECK(has(result.output, "\n55,0.5\n60,0\n"));
  CHECK(has(result.output, "\n80,0\n"));

  result =
      run("schedule --preset demo --set max_train_steps=200 --set crepa_scheduler=linear --set crepa_lambda=1 --format "
          "table");
  REQUIRE(result.code == 0);  // 0 … max_train_steps (200) in 20 strides
  CHECK(has(result.output, "crepa_weight"));
  CHECK(has(result.output, "\n         0        1.000000\n"));
  CHECK(has(result.output, "\n       100        0.500000\n"));
  CHECK(has(result.output, "\n       200        0.000000\n"));

  result = run("schedule --preset sdxl --set max_train_steps=10 --steps 0:10:10");
  CHECK(result.output == "step,urepa_weight\n0,0.5\n10,0.5\n");
  CHECK(run("schedule --preset demo --steps 10:0:1").code == 2);
  CHECK(run("schedule --preset sdxl").code == 2);  // no max_train_steps and no --steps
}

TEST_CASE("validate prints warnings and exits 0 when there are only warnings") {
  const std::string file = repa::test::source_path("tests/config/data/simpletuner_examples/config.json.example");
  const auto result = run("validate " + file);
  CHECK(result.code == 0);
  CHECK(has(result.output, "config.json.example: valid"));
  CHECK(has(result.output,
            "warning: validation_torch_compile: unknown option, ignored: SimpleTuner's config "
            "loader drops the string \"false\" before its parser"));
  CHECK(has(result.output, "warning: report_to: \"wandb\": exported to SimpleTuner; not used by the studio's trainer"));

  repa::test::ScratchDir dir;
  repa::test::write_bytes(dir.file("typo.json"), R"({"validation_torch_compile": false})");
  const auto refused = run("validate " + dir.file("typo.json"));
  CHECK(refused.code == 2);
  CHECK(has(refused.output, "validation_torch_compile: unknown option"));
  CHECK_FALSE(has(refused.output, "ignored"));
}

TEST_CASE("options the studio's trainer ignores: warnings; a backbone teacher refuses run, not export") {
  repa::test::ScratchDir dir;
  repa::test::write_bytes(dir.file("xm.json"), R"({"crepa_enabled": true, "xm_enabled": true, "xm_candidate_count": 2,
      "twinflow_enabled": true, "layersync_enabled": true, "crepa_feature_source": "backbone"})");
  auto result = run("validate " + dir.file("xm.json"));
  CHECK(result.code == 2);
  CHECK(has(result.output, "warning: xm_enabled: true: exported to SimpleTuner; not used by the studio's trainer"));
  CHECK(has(result.output, "warning: twinflow_enabled: true: exported to SimpleTuner"));
  CHECK(has(result.output, "warning: layersync_enabled: true: exported to SimpleTuner"));
  CHECK(has(result.output, "1 problem in " + dir.file("xm.json")));
  CHECK(has(result.output,
            "crepa_feature_source: \"backbone\": exported to SimpleTuner; not used by the studio's "
            "trainer, which takes REPA's teacher from the vision encoder only"));

  result = run("validate " + dir.file("xm.json") + " --export");
  CHECK(result.code == 0);
  CHECK(has(result.output, "(a native run refuses it)"));

  result = run("export " + dir.file("xm.json") + " --format simpletuner --out " + dir.file("out"));
  REQUIRE(result.code == 0);
  CHECK(has(result.output, "warning: crepa_feature_source: \"backbone\""));
  const auto exported = json::parse(repa::test::read_bytes(dir.file("out/config.json")));
  CHECK(exported["crepa_feature_source"] == "backbone");
  CHECK(exported["xm_enabled"] == true);

  result = run("run --config " + dir.file("xm.json") + " --set output_dir=" + dir.file("runs"));
  CHECK(result.code == 2);
  CHECK(has(result.output, "crepa_feature_source"));
  CHECK_FALSE(std::filesystem::exists(dir.file("runs")));
}
