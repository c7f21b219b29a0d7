// repa-train against hostile files and a shared run folder: headers whose sizes overflow, a second worker on
// the same run, damaged checkpoints on resume. Each ends with exit 2 and the thing named, or a named warning. An
// SDXL run killed with SIGKILL resumes to the uninterrupted run's losses, samples and fine-tuned pipeline.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data/demo_dataset.h"
#include "core/io/safetensors.h"
#include "core/train/tiny_pipeline.h"
#include "tests/run_files.h"
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

// A child repa-train with pipes on stdin and stdout (stderr joins stdout).
struct Worker {
  pid_t pid = -1;
  int to_child = -1;
  FILE* from_child = nullptr;
};

Worker start(const std::vector<std::string>& args) {
  int in[2], out[2];
  REQUIRE(::pipe(in) == 0);
  REQUIRE(::pipe(out) == 0);
  Worker w;
  w.pid = ::fork();
  REQUIRE(w.pid >= 0);
  if (w.pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(in[1]);
    ::close(out[0]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(REPA_TRAIN_EXE));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(REPA_TRAIN_EXE, argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  w.to_child = in[1];
  w.from_child = ::fdopen(out[0], "r");
  return w;
}

// Reads lines until `stop_when` says so (collecting them in *all); false at end of stream.
template <typename F>
bool read_until(Worker& w, F stop_when, std::string* all = nullptr) {
  std::array<char, 1 << 16> line{};
  while (std::fgets(line.data(), line.size(), w.from_child)) {
    if (all) *all += line.data();
    const auto event = nlohmann::json::parse(line.data(), nullptr, false);
    if (event.is_object() && stop_when(event)) return true;
  }
  return false;
}

int finish(Worker& w, std::string* all = nullptr) {
  ::close(w.to_child);
  read_until(
      w, [](const nlohmann::json&) { return false; }, all);
  std::fclose(w.from_child);
  int status = 0;
  ::waitpid(w.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::vector<std::string> demo_args(const std::string& out, const std::string& name, int steps) {
  return {"--threads",
          "1",
          "run",
          "--preset",
          "demo",
          "--events",
          "stdio",
          "--set",
          "output_dir=" + out,
          "--set",
          "studio.run_name=" + name,
          "--set",
          "max_train_steps=" + std::to_string(steps),
          "--set",
          "checkpoint_step_interval=4",
          "--set",
          "validation_step_interval=0"};
}

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += " '" + a + "'";
  return out;
}

void send(Worker& w, const std::string& command) {
  const std::string line = "{\"command\":\"" + command + "\"}\n";
  REQUIRE(::write(w.to_child, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
}

// The loss of every step of a run; a step that ran twice (before a kill and after the resume) keeps its last line.
std::map<int64_t, double> losses_by_step(const std::string& run_dir) {
  std::map<int64_t, double> out;
  for (const auto& m : repa::test::metrics_of(run_dir)) out[m.at("step").get<int64_t>()] = m.at("loss").get<double>();
  return out;
}

std::string raw_safetensors(const std::string& header) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header;
}

}  // namespace

TEST_CASE("inspect refuses a [2^62] F32 tensor of 0 bytes with exit 2, naming the file and the tensor") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("wrapped.safetensors");
  repa::test::write_bytes(
      path, raw_safetensors(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"));
  const auto result = run("inspect " + path);
  CHECK(result.code == 2);
  CHECK(contains(result.output, "wrapped.safetensors"));
  CHECK(contains(result.output, "tensor 'w'"));

  repa::test::write_bytes(path, raw_safetensors(R"({"w":{"dtype":"F32","shape":)" + std::string(65000, '[') + "1" +
                                                std::string(65000, ']') + R"(,"data_offsets":[0,0]}})"));
  const auto deep = run("inspect " + path);
  CHECK(deep.code == 2);
  CHECK(contains(deep.output, "nested deeper"));
}

TEST_CASE(
    "a second worker on a run folder in use exits 2 naming the first one's pid and host; nothing of it is touched") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  Worker first = start(demo_args(out, "shared", 100000));
  REQUIRE(read_until(first, [](const nlohmann::json& e) { return e["type"] == "metrics"; }));
  const auto status_before = repa::test::read_bytes(out + "/shared/config.json");

  const auto second = run(joined(demo_args(out, "shared", 7)));
  CHECK(second.code == 2);
  CHECK(contains(second.output, "in use by another worker"));
  CHECK(contains(second.output, "pid " + std::to_string(first.pid)));
  CHECK(contains(second.output, "since "));
  // The second worker's settings (7 steps) never reached the folder.
  CHECK(repa::test::read_bytes(out + "/shared/config.json") == status_before);

  const std::string stop = "{\"command\":\"stop\"}\n";
  REQUIRE(::write(first.to_child, stop.data(), stop.size()) == static_cast<ssize_t>(stop.size()));
  CHECK(finish(first) == 0);
  // Released: the next worker on the folder starts (and resumes the first one's checkpoint).
  Worker third = start(demo_args(out, "shared", 100000));
  std::string third_output;
  CHECK(read_until(
      third, [](const nlohmann::json& e) { return e["type"] == "metrics"; }, &third_output));
  REQUIRE(::write(third.to_child, stop.data(), stop.size()) == static_cast<ssize_t>(stop.size()));
  CHECK(finish(third, &third_output) == 0);
  CHECK_FALSE(contains(third_output, "took over"));
}

TEST_CASE("resume skips a checkpoint whose file changed, with a warning; a hostile step is refused with exit 2") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  REQUIRE(run(joined(demo_args(out, "flip", 8))).code == 0);
  const std::string ckpts = out + "/flip/checkpoints";
  REQUIRE(fs::exists(ckpts + "/checkpoint-8/manifest.json"));
  const auto model = ckpts + "/checkpoint-8/model.safetensors";
  auto bytes = repa::test::read_bytes(model);
  bytes[bytes.size() - 5] = static_cast<char>(bytes[bytes.size() - 5] ^ 0x01);
  repa::test::write_bytes(model, bytes);

  auto args = demo_args(out, "flip", 12);
  args.insert(args.end(), {"--set", "resume_from_checkpoint=latest"});
  Worker resumed = start(args);
  std::string resumed_from, warnings;
  read_until(resumed, [&](const nlohmann::json& e) {
    if (e["type"] == "run_started") resumed_from = e["resumed_from"];
    if (e["type"] == "log" && e["level"] == "warning") warnings += e["message"].get<std::string>() + "\n";
    return false;
  });
  CHECK(finish(resumed) == 0);
  CHECK(fs::path(resumed_from).filename() == "checkpoint-4");
  CHECK(contains(warnings, "checkpoint-8/model.safetensors has sha256"));
  CHECK(contains(warnings, "previous checkpoint"));
  CHECK(fs::exists(ckpts + "/checkpoint-12/manifest.json"));

  // A hand-edited step in a checkpoint without a manifest (as older versions wrote them): exit 2, file and key named.
  const auto state_path = ckpts + "/checkpoint-12/trainer_state.json";
  auto state = nlohmann::json::parse(repa::test::read_bytes(state_path));
  state["step"] = -5;
  repa::test::write_bytes(state_path, state.dump());
  fs::remove(ckpts + "/checkpoint-12/manifest.json");
  const auto refused = run(joined(args));
  CHECK(refused.code == 2);
  CHECK(contains(refused.output, "checkpoint-12/trainer_state.json"));
  CHECK(contains(refused.output, "key 'step'"));
  CHECK(contains(refused.output, "[0, 12]"));
}

TEST_CASE("an SDXL run killed with SIGKILL after a checkpoint resumes to the same losses, samples and pipeline") {
  repa::test::ScratchDir dir;
  repa::data::generate_demo_dataset(dir.file("data"), {2, 48, 3});  // 12 captioned images
  repa::train::write_tiny_sd_pipeline(dir.file("xl"), "sdxl", repa::test::fixture_path("tokenizers/clip"), 21);
  const nlohmann::json config = {{"model_family", "sdxl"},
                                 {"pretrained_model_name_or_path", dir.file("xl")},
                                 {"output_dir", dir.file("runs")},
                                 {"resolution", 32},
                                 {"max_train_steps", 6},
                                 {"train_batch_size", 2},
                                 {"learning_rate", 1e-3},
                                 {"seed", 7},
                                 {"checkpoint_step_interval", 2},
                                 {"validation_step_interval", 0},
                                 {"validation_num_inference_steps", 2},
                                 {"caption_strategy", "textfile"},
                                 {"caption_dropout_probability", 0.3},
                                 {"use_ema", true},
                                 {"ema_decay", 0.5},
                                 {"urepa_enabled", true},
                                 {"urepa_model", "dinov2_vits14"},
                                 {"urepa_encoder_image_size", 28},
                                 {"studio",
                                  {{"dataset_dir", dir.file("data")},
                                   {"class_labels", false},
                                   {"encoder_random_init", true},
                                   {"device", "cpu"},
                                   {"num_workers", 0}}}};
  repa::test::write_bytes(dir.file("run.json"), config.dump(2));
  const auto args = [&](const std::string& name, bool resume) {
    std::vector<std::string> out = {"--threads", "1", "run", "--config", dir.file("run.json")};
    out.insert(out.end(), {"--events", "stdio", "--set", "studio.run_name=" + name});
    if (resume) out.insert(out.end(), {"--set", "resume_from_checkpoint=latest"});
    return out;
  };

  {
    Worker whole = start(args("whole", false));
    std::string output;
    const int code = finish(whole, &output);
    INFO(output);
    REQUIRE(code == 0);
  }
  const auto reference = losses_by_step(dir.file("runs/whole"));
  REQUIRE(reference.size() == 6);

  // Paused once checkpoint-2 is written, so the kill lands after it and before the end however fast the steps are.
  Worker killed = start(args("killed", false));
  int64_t paused_at = -1;
  REQUIRE(read_until(killed, [&](const nlohmann::json& e) {
    if (e["type"] == "checkpoint" && e["step"] == 2) send(killed, "pause");
    if (e["type"] == "state" && e["state"] == "paused") paused_at = e["step"].get<int64_t>();
    return paused_at >= 0;
  }));
  CHECK(paused_at >= 2);
  CHECK(paused_at < 6);
  ::kill(killed.pid, SIGKILL);
  CHECK(finish(killed) == -SIGKILL);
  const std::string run = dir.file("runs/killed");
  CHECK(fs::exists(run + "/checkpoints/checkpoint-2/manifest.json"));
  CHECK_FALSE(fs::exists(run + "/pipeline"));

  int64_t first_step = -1;
  {
    Worker resumed = start(args("killed", true));
    std::string output;
    read_until(
        resumed,
        [&](const nlohmann::json& e) {
          if (e["type"] == "run_started") first_step = e["step"];
          return false;
        },
        &output);
    const int code = finish(resumed, &output);
    INFO(output);
    REQUIRE(code == 0);
  }
  CHECK(first_step == paused_at / 2 * 2);  // the last checkpoint before the kill
  const auto losses = losses_by_step(run);
  REQUIRE(losses.size() == 6);
  for (int64_t step = 1; step <= 6; ++step) {
    CAPTURE(step);
    CHECK(losses.at(step) == reference.at(step));
  }
  // The end of the run: the sample grid, the EMA UNet and the single file, as the uninterrupted run wrote them.
  const auto samples = repa::test::events_of(run, "sample");
  REQUIRE(samples.size() == 1);
  CHECK(samples[0]["step"] == 6);
  CHECK(repa::test::read_bytes(run + "/samples/step-000006.png") ==
        repa::test::read_bytes(dir.file("runs/whole/samples/step-000006.png")));
  CHECK(repa::test::read_bytes(run + "/pipeline/unet/diffusion_pytorch_model.safetensors") ==
        repa::test::read_bytes(dir.file("runs/whole/pipeline/unet/diffusion_pytorch_model.safetensors")));
  const auto single = repa::io::SafetensorsFile::open(run + "/killed.safetensors");
  CHECK(single.contains("model.diffusion_model.input_blocks.0.0.weight"));
  const auto names = single.names();
  CHECK(std::any_of(names.begin(), names.end(),
                    [](const std::string& n) { return n.rfind("conditioner.embedders.1.model.", 0) == 0; }));
}
