// `repa-train run` with an SDXL single file as pretrained_model_name_or_path: the worker converts it into the model
// cache once and trains; a second run reuses the converted folder; a file of another family exits 2 naming it.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/data/demo_dataset.h"
#include "core/models/sd_pipeline_folder.h"
#include "core/train/tiny_pipeline.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace repa;

namespace {

int run_tool(const std::string& env, const std::string& args, const std::string& log) {
  const int status = std::system((env + " " + REPA_TRAIN_EXE + " " + args + " > " + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int lines_of(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

}  // namespace

TEST_CASE("repa-train run trains from an SDXL single file, converted once; another family's file is named") {
  test::ScratchDir dir;
  data::generate_demo_dataset(dir.file("data"), {2, 48, 3});
  train::write_tiny_sd_pipeline(dir.file("xl"), "sdxl", test::fixture_path("tokenizers/clip"), 21);
  fs::create_directories(dir.file("files"));
  models::write_ldm_single_file(dir.file("xl"), "sdxl", dir.file("files/tiny-xl.safetensors"));
  for (const char* t : {"tokenizer", "tokenizer_2"})
    fs::copy(dir.file(std::string("xl/") + t), dir.file(std::string("files/") + t));
  const nlohmann::json config = {{"model_family", "sdxl"},
                                 {"pretrained_model_name_or_path", dir.file("files/tiny-xl.safetensors")},
                                 {"output_dir", dir.file("runs")},
                                 {"resolution", 32},
                                 {"max_train_steps", 2},
                                 {"train_batch_size", 2},
                                 {"validation_step_interval", 0},
                                 {"caption_strategy", "textfile"},
                                 {"urepa_enabled", true},
                                 {"urepa_model", "dinov2_vits14"},
                                 {"urepa_encoder_image_size", 28},
                                 {"studio",
                                  {{"dataset_dir", dir.file("data")},
                                   {"class_labels", false},
                                   {"run_name", "single"},
                                   // Named here: the registry's defaults (sd1x, linear, euler) reach a CLI run before
                                   // the family's own settings do, for folders as for single files.
                                   {"text_conditioning", "sdxl"},
                                   {"objective", "vp_epsilon"},
                                   {"sampler", "ddim"},
                                   {"encoder_random_init", true},
                                   {"device", "cpu"},
                                   {"num_workers", 0}}}};
  test::write_bytes(dir.file("run.json"), config.dump(2));
  const std::string env = "XDG_CACHE_HOME=" + dir.file("cache") + " REPA_NUM_THREADS=1";
  const int code = run_tool(env, "run --config " + dir.file("run.json"), dir.file("log1.txt"));
  INFO(test::read_bytes(dir.file("log1.txt")));
  REQUIRE(code == 0);
  CHECK(lines_of(dir.file("runs/single/metrics.jsonl")) == 2);
  const auto converted = dir.file("cache/repa-studio/models/.single-file");
  REQUIRE(fs::is_directory(converted));
  int folders = 0;
  for (const auto& entry : fs::directory_iterator(converted)) {
    ++folders;
    CHECK(fs::exists(entry.path() / ".repa-single-file.json"));
    CHECK(fs::exists(entry.path() / "text_encoder_2" / "model.safetensors"));
  }
  CHECK(folders == 1);
  // Another family's model_family for the same file: exit 2, the file named as SDXL.
  auto wrong = config;
  wrong["model_family"] = "sd1x";
  wrong["studio"]["run_name"] = "wrong";
  test::write_bytes(dir.file("wrong.json"), wrong.dump(2));
  CHECK(run_tool(env, "run --config " + dir.file("wrong.json"), dir.file("log2.txt")) == 2);
  CHECK(test::contains(test::read_bytes(dir.file("log2.txt")),
                       "this checkpoint is SDXL: it has conditioner.embedders.1; model_family is sd1x"));
}
