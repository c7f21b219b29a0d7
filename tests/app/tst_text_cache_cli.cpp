// repa-train cache on a text-conditioned config: captions are encoded into the text-embedding cache once; a
// second call encodes nothing, a changed caption is encoded again; a caption file that is not UTF-8 stops the
// command naming file and offset; a prompt over the limit is named once per file with its token count; the
// dataset can come from SimpleTuner's multidatabackend.json.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "core/data/demo_dataset.h"
#include "core/text/random_text_encoder.h"
#include "core/train/tiny_pipeline.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using repa::test::contains;

namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& args) {
  const std::string command = std::string(REPA_TRAIN_EXE) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (const auto n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

void write_pipeline(const std::string& root) {
  fs::create_directories(root + "/tokenizer");
  for (const char* name : {"vocab.json", "merges.txt"})
    fs::copy_file(repa::test::fixture_path(std::string("tokenizers/clip/") + name), root + "/tokenizer/" + name);
  repa::text::write_random_clip_text_encoder(root + "/text_encoder",
                                             {{"vocab_size", 49408},
                                              {"hidden_size", 16},
                                              {"intermediate_size", 32},
                                              {"num_hidden_layers", 2},
                                              {"num_attention_heads", 2},
                                              {"max_position_embeddings", 77},
                                              {"eos_token_id", 2}},
                                             3);
}

std::string write_config(const repa::test::ScratchDir& dir, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json config = {{"resolution", 16},
                           {"train_batch_size", 4},
                           {"max_train_steps", 2},
                           {"caption_strategy", "textfile"},
                           {"output_dir", dir.file("runs")},
                           {"studio",
                            {{"dataset_dir", dir.file("data")},
                             {"class_labels", false},
                             {"architecture", "unet2d_condition"},
                             {"text_encoder_path", dir.file("pipe")},
                             {"text_conditioning", "sd1x"},
                             {"caption_prefix", "demo: "},
                             {"device", "cpu"},
                             {"num_workers", 0}}}};
  config.merge_patch(extra);
  repa::test::write_bytes(dir.file("config.json"), config.dump(2));
  return dir.file("config.json");
}

}  // namespace

TEST_CASE("repa-train cache: captions encoded once, a changed caption again, nothing when all are cached") {
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {1, 16, 2});  // 6 images, 6 captions
  write_pipeline(dir.file("pipe"));
  const auto config = write_config(dir);
  auto first = run("--threads 1 cache " + config);
  INFO(first.output);
  REQUIRE(first.code == 0);
  CHECK(contains(first.output, "text embeddings: 7 prompts, 0 reused, 7 encoded"));  // 6 captions + the empty one
  CHECK(contains(first.output, "text embeddings [##############################] 7/7"));
  CHECK(contains(first.output, "after they were freed"));

  auto second = run("--threads 1 cache " + config);
  CHECK(second.code == 0);
  CHECK(contains(second.output, "text embeddings: 7 prompts, 7 reused, 0 encoded"));

  repa::test::write_bytes(dir.file("data/ring/ring_000.txt"), "a ring, described anew\n");
  auto third = run("--threads 1 cache " + config);
  CHECK(third.code == 0);
  CHECK(contains(third.output, "text embeddings: 7 prompts, 6 reused, 1 encoded"));

  std::string long_caption;
  for (int i = 0; i < 80; ++i) long_caption += "red ";
  repa::test::write_bytes(dir.file("data/disc/disc_000.txt"), long_caption + "\nand " + long_caption + "\n");
  auto long_prompt = run("--threads 1 cache " + config);
  CHECK(long_prompt.code == 0);
  // One warning for the file although both of its captions are cut: bos, "demo", ":", 80 words, eos.
  CHECK(contains(long_prompt.output, "disc_000.txt: a prompt of 84 tokens is longer than text_encoder keeps (77)"));
  CHECK(long_prompt.output.find("disc_000.txt: a prompt") == long_prompt.output.rfind("disc_000.txt: a prompt"));

  repa::test::write_bytes(dir.file("data/cross/cross_000.txt"), "a cross \xFF\xFE");
  auto bad = run("--threads 1 cache " + config);
  CHECK(bad.code != 0);
  CHECK(contains(bad.output, dir.file("data/cross/cross_000.txt")));
  CHECK(contains(bad.output, "not UTF-8: byte 0xFF at offset 8"));
}

TEST_CASE("repa-train cache reads the dataset from SimpleTuner's multidatabackend.json") {
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {1, 16, 2});
  write_pipeline(dir.file("pipe"));
  const nlohmann::json backends = nlohmann::json::array({{{"id", "shapes"},
                                                          {"type", "local"},
                                                          {"instance_data_dir", dir.file("data")},
                                                          {"caption_strategy", "instanceprompt"},
                                                          {"instance_prompt", "a shape"},
                                                          {"resolution", 16},
                                                          {"resolution_type", "pixel"},
                                                          {"crop_style", "random"},
                                                          {"repeats", 1}}});
  repa::test::write_bytes(dir.file("multidatabackend.json"), backends.dump(2));
  const auto config = write_config(dir, {{"data_backend_config", dir.file("multidatabackend.json")}});
  auto result = run("--threads 1 cache " + config);
  INFO(result.output);
  REQUIRE(result.code == 0);
  CHECK(contains(result.output, "12 images ready"));  // 6 images, each seen 1 + 1 times
  CHECK(contains(result.output, "(\"shapes\"): crop_style \"random\""));
  // The prefix applies to the instance prompt too: "demo: a shape" and the empty caption.
  CHECK(contains(result.output, "text embeddings: 2 prompts, 0 reused, 2 encoded"));
}

TEST_CASE("repa-train cache on a model_family config fills what its run reads: a run after it encodes nothing") {
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {1, 16, 2});  // 6 images, 6 captions
  repa::train::write_tiny_sd_pipeline(dir.file("sd"), "sd1x", repa::test::fixture_path("tokenizers/clip"), 4);
  nlohmann::json config = {{"model_family", "sd1x"},
                           {"pretrained_model_name_or_path", dir.file("sd")},
                           {"resolution", 16},
                           {"train_batch_size", 2},
                           {"max_train_steps", 1},
                           {"caption_strategy", "textfile"},
                           {"validation_prompt", "a red disc"},
                           {"output_dir", dir.file("runs")},
                           {"studio", {{"dataset_dir", dir.file("data")}, {"class_labels", false}, {"device", "cpu"},
                                       {"num_workers", 0}, {"run_name", "family"}}}};
  repa::test::write_bytes(dir.file("family.json"), config.dump(2));
  // 6 captions, the empty one, the validation prompt and the negative prompt.
  const auto cached = run("cache " + dir.file("family.json"));
  INFO(cached.output);
  REQUIRE(cached.code == 0);
  CHECK(contains(cached.output, "text embeddings: 9 prompts, 0 reused, 9 encoded"));
  CHECK(contains(cached.output, "6 images ready"));
  const auto trained = run("run " + dir.file("family.json"));
  INFO(trained.output);
  REQUIRE(trained.code == 0);
  std::ifstream log(dir.file("runs/family/train.log"));
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(contains(text, "9 reused, 0 encoded"));
}
