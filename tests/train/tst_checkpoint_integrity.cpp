// Checkpoints a kill, a bit flip or a hostile edit has touched: trainer_state.json against its schema, the
// sha256 manifest and the fall-back to the previous checkpoint, leftovers of killed writes and deletions.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/encoders/sha256.h"
#include "core/train/checkpoint.h"
#include "tests/test_support.h"

using namespace repa::train;
using repa::test::contains;
using repa::test::error_of;
namespace fs = std::filesystem;

namespace {

nlohmann::json good_state(int64_t step) {
  return {{"format", "repa-studio checkpoint"},
          {"version", 1},
          {"step", step},
          {"max_train_steps", 50},
          {"config_hash", "0123456789abcdef"},
          {"config", nlohmann::json::object()},
          {"align", {{"schedule", {{"similarity_ema", nullptr}, {"cutoff_triggered", false}}}}},
          {"optimizer_steps", {step, 0}},
          {"lr", 1e-4},
          {"lr_scheduler", "constant"},
          {"data_position", {{"epoch", 1}, {"offset", 3}, {"dataset_size", 8}, {"seed", 0}}},
          {"num_classes", 2},
          {"class_names", {"a", "b"}}};
}

CheckpointParts parts_for(int64_t step) {
  CheckpointParts parts;
  parts.tensors["model"] = {{"w", torch::full({64}, static_cast<float>(step))}};
  parts.tensors["rng"] = {{"cpu", torch::zeros({4}, torch::kUInt8)}};
  parts.state = good_state(step);
  return parts;
}

// The message of reading trainer_state.json holding `text` in a folder checkpoint-<step>.
std::string state_error(const repa::test::ScratchDir& dir, const std::string& text, int64_t max_step = 50,
                        const std::string& folder = "checkpoint-7") {
  const auto ckpt = dir.path() / folder;
  fs::create_directories(ckpt);
  repa::test::write_bytes((ckpt / "trainer_state.json").string(), text);
  return error_of([&] { read_checkpoint_state(ckpt.string(), max_step); });
}

std::string with(const std::string& key, const nlohmann::json& value) {
  auto state = good_state(7);
  state[key] = value;
  return state.dump();
}

void flip_a_bit(const std::string& file, std::size_t at) {
  auto bytes = repa::test::read_bytes(file);
  REQUIRE(at < bytes.size());
  bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
  repa::test::write_bytes(file, bytes);
}

}  // namespace

TEST_CASE("trainer_state.json is checked against its schema; each error names the file, the key and the range") {
  repa::test::ScratchDir dir;
  CHECK(state_error(dir, good_state(7).dump()).empty());

  auto message = state_error(dir, with("step", -5));
  CHECK(contains(message, "checkpoint-7/trainer_state.json"));
  CHECK(contains(message, "key 'step'"));
  CHECK(contains(message, "an integer in [0, 50]"));
  CHECK(contains(message, "got -5"));
  // 10^12 is beyond the run's max_train_steps, and beyond the bound used when no run limits it.
  CHECK(contains(state_error(dir, with("step", int64_t{1000000000000})), "[0, 50]"));
  CHECK(contains(state_error(dir, with("step", int64_t{1000000000000}), kMaxCheckpointStep), "[0, 1000000000]"));
  CHECK(contains(state_error(dir, with("step", 51)), "raise it to train on"));
  CHECK(contains(state_error(dir, with("step", "7")), "got \"7\""));
  CHECK(contains(state_error(dir, with("step", 7.5)), "key 'step'"));

  auto missing = good_state(7);
  missing.erase("data_position");
  CHECK(contains(state_error(dir, missing.dump()), "key 'data_position'"));
  missing = good_state(7);
  missing.erase("config");
  CHECK(contains(state_error(dir, missing.dump()),
                 "key 'config': expected an object (the resolved config), but it is missing"));
  auto position = good_state(7);
  position["data_position"]["offset"] = -1;
  CHECK(contains(state_error(dir, position.dump()), "key 'data_position.offset'"));
  CHECK(contains(state_error(dir, with("optimizer_steps", {7, 8})), "key 'optimizer_steps[1]'"));
  CHECK(contains(state_error(dir, with("align", {{"schedule", {{"similarity_ema", 0.5}, {"cutoff_triggered", "no"}}}})),
                 "key 'align.schedule.cutoff_triggered': expected a boolean"));
  CHECK(contains(state_error(dir, with("class_names", {"a", 3})), "key 'class_names[1]'"));
  CHECK(contains(state_error(dir, with("lora", {{"base_fingerprint", "x"}})), "key 'lora.base_fingerprint'"));
  CHECK(contains(state_error(dir, with("format", "other")), "key 'format'"));
  CHECK(contains(state_error(dir, "[1,2]"), "a JSON object"));
  CHECK(contains(state_error(dir, "{\"step\":"), "not valid JSON"));

  // A huge value is quoted as a short excerpt; a deep one is refused before anything recurses.
  message = state_error(dir, with("step", std::string(1 << 20, 'x')));
  CHECK(message.size() < 400);
  message = state_error(dir, R"({"step":7,"data_position":)" + std::string(65000, '[') + std::string(65000, ']') + "}");
  CHECK(contains(message, "trainer_state.json"));
  CHECK(contains(message, "nested deeper than 64"));

  // A folder renamed by hand does not resume at another step than its name.
  CHECK(contains(state_error(dir, good_state(7).dump(), 50, "checkpoint-9"), "named checkpoint-9"));
}

TEST_CASE("every checkpoint carries a manifest with the size and sha256 of each of its files") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  const auto ckpt = write_checkpoint(root, 4, parts_for(4), 0);
  const auto manifest = nlohmann::json::parse(repa::test::read_bytes(ckpt + "/manifest.json"));
  CHECK(manifest["format"] == "repa-studio checkpoint manifest");
  CHECK(manifest["step"] == 4);
  std::vector<std::string> listed;
  for (const auto& [name, entry] : manifest["files"].items()) {
    listed.push_back(name);
    CHECK(entry["bytes"] == fs::file_size(ckpt + "/" + name));
    CHECK(entry["sha256"] == repa::encoders::sha256_file(ckpt + "/" + name));
  }
  CHECK(listed == std::vector<std::string>{"model.safetensors", "rng.safetensors", "trainer_state.json"});
  CHECK(verify_checkpoint(ckpt).empty());
  // Nothing temporary is left beside it.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"checkpoint-4"});
}

TEST_CASE("a bit flip is found on resume: latest falls back to the previous checkpoint, a named one is refused") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  const auto first = write_checkpoint(root, 4, parts_for(4), 0);
  const auto second = write_checkpoint(root, 8, parts_for(8), 0);
  flip_a_bit(second + "/model.safetensors", fs::file_size(second + "/model.safetensors") - 3);

  const auto problem = verify_checkpoint(second);
  CHECK(contains(problem, "checkpoint-8/model.safetensors"));
  CHECK(contains(problem, "sha256"));

  std::vector<std::string> notes;
  const auto chosen = resolve_resume("latest", root, [&](const std::string& n) { notes.push_back(n); });
  REQUIRE(chosen.has_value());
  CHECK(*chosen == first);
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], "checkpoint-8"));
  CHECK(contains(notes[0], "model.safetensors"));
  CHECK(contains(notes[0], "previous checkpoint"));
  // The run folder resolves the same way.
  CHECK(*resolve_resume(dir.path().string(), root) == first);

  auto message = error_of([&] { resolve_resume(second, root); });
  CHECK(contains(message, "checkpoint-8"));
  CHECK(contains(message, "model.safetensors"));

  // A changed trainer_state.json is caught the same way (the schema alone cannot see a plausible edit).
  flip_a_bit(first + "/trainer_state.json", 10);
  message = error_of([&] { resolve_resume("latest", root); });
  CHECK(contains(message, "no checkpoint in"));
  CHECK(contains(message, "checkpoint-4/trainer_state.json"));
}

TEST_CASE("a checkpoint written before manifests still loads, with a one-line note") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  const auto ckpt = write_checkpoint(root, 4, parts_for(4), 0);
  fs::remove(ckpt + "/manifest.json");
  bool legacy = false;
  CHECK(verify_checkpoint(ckpt, &legacy).empty());
  CHECK(legacy);
  std::vector<std::string> notes;
  CHECK(*resolve_resume("latest", root, [&](const std::string& n) { notes.push_back(n); }) == ckpt);
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], "no manifest"));
  CHECK(read_checkpoint_state(ckpt)["step"] == 4);
}

TEST_CASE("latest never picks an incomplete checkpoint, and start-up removes what killed writes left") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  for (int64_t step : {4, 8, 12}) write_checkpoint(root, step, parts_for(step), 0);
  // A deletion cut by a kill before deletions were renamed first: the state and manifest survive, a part not.
  fs::remove(root + "/checkpoint-12/model.safetensors");
  CHECK(fs::path(*latest_checkpoint(root)).filename() == "checkpoint-8");
  CHECK(fs::path(*resolve_resume("latest", root)).filename() == "checkpoint-8");

  // A folder being written, one being deleted, and a rewrite of step 8 killed between its two renames.
  fs::create_directories(root + "/.tmp-checkpoint-16-4242");
  repa::test::write_bytes(root + "/.tmp-checkpoint-16-4242/model.safetensors", "partial");
  fs::create_directories(root + "/.removing-checkpoint-2");
  fs::rename(root + "/checkpoint-8", root + "/.old-checkpoint-8");
  // And a folder named like a checkpoint that holds a user's file: never deleted, never resumed.
  fs::create_directories(root + "/checkpoint-20");
  repa::test::write_bytes(root + "/checkpoint-20/notes.txt", "mine");

  const auto notes = clean_checkpoint_leftovers(root);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint-20", "checkpoint-4", "checkpoint-8"});
  CHECK(verify_checkpoint(root + "/checkpoint-8").empty());
  CHECK(fs::exists(root + "/checkpoint-20/notes.txt"));
  std::string all;
  for (const auto& n : notes) all += n + "\n";
  INFO(all);
  CHECK(notes.size() == 5);
  CHECK(contains(all, "put back"));
  CHECK(contains(all, ".tmp-checkpoint-16-4242"));
  CHECK(contains(all, ".removing-checkpoint-2"));
  CHECK(contains(all, "incomplete checkpoint"));
  CHECK(contains(all, "checkpoint-20 is not a complete checkpoint"));
  CHECK(fs::path(*latest_checkpoint(root)).filename() == "checkpoint-8");
}

TEST_CASE("rotation deletes old checkpoints through a hidden name and leaves nothing behind") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  for (int64_t step : {4, 8, 12, 16}) write_checkpoint(root, step, parts_for(step), 2);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint-12", "checkpoint-16"});
  // Rewriting a step keeps one sealed folder.
  write_checkpoint(root, 16, parts_for(16), 2);
  CHECK(verify_checkpoint(root + "/checkpoint-16").empty());
  CHECK(list_checkpoints(root).size() == 2);
}

TEST_CASE("optimizer state whose sizes overflow is refused by name, not with a LibTorch backtrace") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("optimizer.safetensors");
  const std::string header = R"({"0.exp_avg":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  repa::test::write_bytes(path, bytes + header);
  const auto message = error_of([&] { open_checkpoint_part(dir.path().string(), "optimizer"); });
  CHECK(contains(message, "optimizer.safetensors"));
  CHECK(contains(message, "tensor '0.exp_avg'"));
}

TEST_CASE("AdamW state and generator state from a file are checked before LibTorch sees them") {
  repa::test::ScratchDir dir;
  auto layer = torch::nn::Linear(3, 2);
  torch::optim::AdamW optimizer(layer->parameters(), torch::optim::AdamWOptions(0.1));
  const auto save = [&](const repa::io::NamedTensors& tensors) {
    repa::io::save_safetensors(dir.file("optimizer.safetensors"), tensors);
    return repa::io::SafetensorsFile::open(dir.file("optimizer.safetensors"));
  };
  const nlohmann::json steps = {3, 3};
  auto message = error_of([&] {
    load_adamw_state(optimizer, save({{"0.exp_avg", torch::zeros({2, 3})}, {"0.exp_avg_sq", torch::zeros({5})}}),
                     steps);
  });
  CHECK(contains(message, "'0.exp_avg_sq'"));
  CHECK(contains(message, "optimizer.safetensors"));
  message = error_of([&] {
    load_adamw_state(optimizer,
                     save({{"0.exp_avg", torch::zeros({2, 3}, torch::kInt64)}, {"0.exp_avg_sq", torch::zeros({2, 3})}}),
                     steps);
  });
  CHECK(contains(message, "floating-point"));
  message = error_of([&] {
    load_adamw_state(optimizer, save({{"0.exp_avg", torch::zeros({2, 3})}, {"0.exp_avg_sq", torch::zeros({2, 3})}}),
                     nlohmann::json::array());
  });
  CHECK(contains(message, "optimizer_steps"));

  repa::io::save_safetensors(dir.file("rng.safetensors"), {{"cpu", torch::zeros({7}, torch::kUInt8)}});
  message = error_of([&] { load_rng_state(repa::io::SafetensorsFile::open(dir.file("rng.safetensors"))); });
  CHECK(contains(message, "rng.safetensors"));
  CHECK(contains(message, "generator state"));
}

TEST_CASE("a manifest with fields of the wrong type fails the check by name, and latest falls back") {
  repa::test::ScratchDir dir;
  const auto root = dir.file("checkpoints");
  const auto first = write_checkpoint(root, 4, parts_for(4), 0);
  const auto second = write_checkpoint(root, 8, parts_for(8), 0);
  for (const char* manifest :
       {R"({"format": {}})", R"({"format": "repa-studio checkpoint manifest", "files": {"a": 1}})",
        R"({"format": "repa-studio checkpoint manifest", "files": {"../x": {"bytes": 1, "sha256": "0"}}})", "[", "7"}) {
    INFO(manifest);
    repa::test::write_bytes(second + "/manifest.json", manifest);
    const auto problem = verify_checkpoint(second);
    CHECK(contains(problem, "checkpoint-8/manifest.json"));
    CHECK(*resolve_resume("latest", root) == first);
  }
}
