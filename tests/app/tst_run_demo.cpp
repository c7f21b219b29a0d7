// repa-train run on the demo preset, headless: it runs to its end with metrics, samples and checkpoints; a run
// killed with SIGKILL resumes from its last checkpoint and repeats the uninterrupted run's losses; stop over
// stdin checkpoints and ends cleanly.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace {

// A child repa-train with pipes on stdin and stdout.
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

int finish(Worker& w) {
  ::close(w.to_child);
  std::array<char, 4096> drain{};
  while (std::fgets(drain.data(), drain.size(), w.from_child)) {
  }
  std::fclose(w.from_child);
  int status = 0;
  ::waitpid(w.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Reads events until `stop_when` says so; returns false at end of stream.
template <typename F>
bool read_events_until(Worker& w, F stop_when) {
  std::array<char, 1 << 16> line{};
  while (std::fgets(line.data(), line.size(), w.from_child)) {
    const auto event = nlohmann::json::parse(line.data(), nullptr, false);
    if (event.is_object() && stop_when(event)) return true;
  }
  return false;
}

std::vector<std::string> demo_args(const std::string& out, const std::string& name, int steps) {
  return {"--threads", "1", "run", "--preset", "demo", "--events", "stdio",
          "--set", "output_dir=" + out, "--set", "studio.run_name=" + name,
          "--set", "max_train_steps=" + std::to_string(steps), "--set", "checkpoint_step_interval=4",
          "--set", "validation_step_interval=4", "--set", "validation_num_inference_steps=4"};
}

std::map<int64_t, double> losses_of(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto m = nlohmann::json::parse(line);
    out[m["step"].get<int64_t>()] = m["loss"].get<double>();
  }
  return out;
}

}  // namespace

TEST_CASE("the demo runs headless to its end; a kill -9 mid-run resumes from the last checkpoint with equal losses") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");

  Worker whole = start(demo_args(out, "whole", 10));
  std::vector<std::string> types;
  read_events_until(whole, [&](const nlohmann::json& e) {
    types.push_back(e["type"]);
    return false;
  });
  CHECK(finish(whole) == 0);
  CHECK(types.front() == "state");
  CHECK(std::find(types.begin(), types.end(), "run_started") != types.end());
  CHECK(std::count(types.begin(), types.end(), "metrics") == 10);
  CHECK(std::count(types.begin(), types.end(), "sample") >= 2);
  const std::string run = out + "/whole";
  for (const char* f : {"config.json", "metrics.jsonl", "events.jsonl", "train.log", "status.json",
                        "samples/step-000004.png", "samples/step-000010.png", "checkpoints/checkpoint-8",
                        "checkpoints/checkpoint-10"})
    CHECK_MESSAGE(fs::exists(run + "/" + f), f);
  const auto config = nlohmann::json::parse(repa::test::read_bytes(run + "/config.json"));
  CHECK(config["studio"]["encoder_random_init"] == true);
  CHECK(repa::test::read_bytes(run + "/train.log").find("randomly initialised") != std::string::npos);
  const auto reference = losses_of(run);
  REQUIRE(reference.size() == 10);

  // Killed after checkpoint 4 and at least one more step, then resumed with resume_from_checkpoint=latest.
  Worker killed = start(demo_args(out, "killed", 10));
  bool past_checkpoint = false;
  const bool reached = read_events_until(killed, [&](const nlohmann::json& e) {
    if (e["type"] == "checkpoint" && e["step"] == 4) past_checkpoint = true;
    return past_checkpoint && e["type"] == "metrics" && e["step"].get<int>() >= 5;
  });
  REQUIRE(reached);
  ::kill(killed.pid, SIGKILL);
  CHECK(finish(killed) == -SIGKILL);
  CHECK(fs::exists(out + "/killed/checkpoints/checkpoint-4/trainer_state.json"));
  auto args = demo_args(out, "killed", 10);
  args.insert(args.end(), {"--set", "resume_from_checkpoint=latest"});
  Worker resumed = start(args);
  int64_t first_step = -1;
  read_events_until(resumed, [&](const nlohmann::json& e) {
    if (e["type"] == "run_started") first_step = e["step"];
    return false;
  });
  CHECK(finish(resumed) == 0);
  CHECK(first_step == 4);
  const auto losses = losses_of(out + "/killed");
  REQUIRE(losses.size() == 10);
  for (int64_t step = 1; step <= 10; ++step) CHECK(losses.at(step) == reference.at(step));
}

TEST_CASE("stop and checkpoint commands over stdin: a checkpoint, then a clean exit with state finished/stopped") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  Worker w = start(demo_args(out, "stopped", 1000));
  bool stopped = false, checkpointed = false;
  read_events_until(w, [&](const nlohmann::json& e) {
    if (e["type"] == "metrics" && e["step"] == 2) {
      const std::string commands = "{\"command\":\"pause\"}\n{\"command\":\"checkpoint\"}\n{\"command\":\"stop\"}\n";
      REQUIRE(::write(w.to_child, commands.data(), commands.size()) == static_cast<ssize_t>(commands.size()));
    }
    if (e["type"] == "checkpoint") checkpointed = true;
    if (e["type"] == "state" && e["state"] == "finished") stopped = e["reason"] == "stopped";
    return false;
  });
  CHECK(finish(w) == 0);
  CHECK(checkpointed);
  CHECK(stopped);
  CHECK(losses_of(out + "/stopped").size() < 1000);
}

TEST_CASE("run_started lists the options in use that the studio's trainer ignores; they and dropped keys are logged") {
  repa::test::ScratchDir dir;
  // A key SimpleTuner no longer registers, with a value its loader drops: logged too.
  repa::test::write_bytes(dir.file("extra.json"), R"({"--validation_torch_compile": "false"})");
  auto args = demo_args(dir.file("runs"), "ignored", 1);
  args.insert(args.end(), {"--config", dir.file("extra.json"), "--set", "xm_enabled=true", "--set",
                           "xm_candidate_count=2", "--set", "mixflow_enabled=true"});
  Worker w = start(args);
  nlohmann::json started;
  std::vector<std::string> warnings;
  read_events_until(w, [&](const nlohmann::json& e) {
    if (e["type"] == "run_started") started = e;
    if (e["type"] == "log" && e["level"] == "warning") warnings.push_back(e["message"]);
    return false;
  });
  CHECK(finish(w) == 0);
  REQUIRE(started.contains("ignored_options"));
  std::vector<std::string> keys;
  for (const auto& option : started["ignored_options"]) keys.push_back(option["key"]);
  CHECK(keys == std::vector<std::string>{"xm_enabled", "xm_candidate_count", "mixflow_enabled"});
  CHECK(started["ignored_options"][0]["reason"] == "exported to SimpleTuner; not used by the studio's trainer");
  CHECK(started["ignored_options"][0]["refused"] == false);
  CHECK(std::count(warnings.begin(), warnings.end(),
                   "xm_enabled = true: exported to SimpleTuner; not used by the studio's trainer") == 1);
  CHECK(std::count(warnings.begin(), warnings.end(),
                   "validation_torch_compile: unknown option, ignored: SimpleTuner's config loader drops the "
                   "string \"false\" before its parser") == 1);
  CHECK(repa::test::read_bytes(dir.file("runs/ignored/train.log"))
            .find("warning: mixflow_enabled = true: exported to SimpleTuner") != std::string::npos);
}
