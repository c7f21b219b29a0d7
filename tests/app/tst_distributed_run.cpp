// repa-train run --nproc-per-node 2 on CPU (Gloo over 127.0.0.1, one thread per rank): rank 1 killed with
// SIGKILL ends the run on both ranks with rank 1 named by the launcher and by rank 0, the last checkpoint stays
// readable, and a resume from latest on two ranks repeats the uninterrupted run's losses; bad launcher
// arguments are refused by name.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/data/demo_dataset.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace {

struct Launch {
  pid_t pid = -1;
  FILE* events = nullptr;  // rank 0's stdout through the launcher
  int commands = -1;       // the launcher's stdin (rank 0's commands)
};

Launch start(const std::vector<std::string>& args, const std::string& stderr_path, bool clean_env = true) {
  int out[2], in[2];
  REQUIRE(::pipe(out) == 0);
  REQUIRE(::pipe(in) == 0);
  std::fflush(nullptr);
  Launch l;
  l.pid = ::fork();
  REQUIRE(l.pid >= 0);
  if (l.pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    ::dup2(in[0], STDIN_FILENO);
    ::close(in[1]);
    ::close(out[0]);
    if (clean_env)
      for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(name);
    std::vector<char*> argv{const_cast<char*>(REPA_TRAIN_EXE)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(REPA_TRAIN_EXE, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(in[0]);
  l.events = ::fdopen(out[0], "r");
  l.commands = in[1];
  return l;
}

int finish(Launch& l) {
  if (l.commands >= 0) ::close(l.commands);
  l.commands = -1;
  std::array<char, 1 << 16> line{};
  while (std::fgets(line.data(), line.size(), l.events)) {
  }
  std::fclose(l.events);
  int status = 0;
  ::waitpid(l.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> run_args(const std::string& config, const std::string& name, int steps) {
  return {"--threads",
          "2",
          "run",
          "--config",
          config,
          "--nproc-per-node",
          "2",
          "--events",
          "stdio",
          "--set",
          "studio.run_name=" + name,
          "--set",
          "max_train_steps=" + std::to_string(steps)};
}

std::map<int64_t, double> losses_of(const std::string& run_dir) {
  std::map<int64_t, double> out;  // the last line of each step counts (a resumed run repeats steps)
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto m = nlohmann::json::parse(line);
    out[m["step"].get<int64_t>()] = m["loss"].get<double>();
  }
  return out;
}

void write_config(const repa::test::ScratchDir& dir) {
  repa::data::generate_demo_dataset(dir.file("data"), {2, 16, 1});
  const nlohmann::json config = {{"output_dir", dir.file("runs")},
                                 {"resolution", 16},
                                 {"train_batch_size", 2},
                                 {"learning_rate", 1e-3},
                                 {"lr_scheduler", "constant"},
                                 {"seed", 5},
                                 {"max_grad_norm", 1.0},
                                 {"checkpoint_step_interval", 2},
                                 {"checkpoints_total_limit", 2},
                                 {"validation_step_interval", 0},
                                 {"crepa_enabled", true},
                                 {"crepa_block_index", 0},
                                 {"crepa_encoder", "dinov2_vits14"},
                                 {"crepa_encoder_image_size", 28},
                                 {"mixed_precision", "no"},
                                 {"studio",
                                  {{"dataset_dir", dir.file("data")},
                                   {"architecture", "sit"},
                                   {"sit_size", "custom"},
                                   {"patch_size", 4},
                                   {"depth", 2},
                                   {"hidden_size", 32},
                                   {"num_heads", 2},
                                   {"encoder_random_init", true},
                                   {"device", "cpu"},
                                   {"num_workers", 1},
                                   {"skip_memory_check", true},
                                   {"distributed_timeout", 30}}}};
  repa::test::write_bytes(dir.file("run.json"), config.dump(2));
}

}  // namespace

TEST_CASE("kill -9 of rank 1: both ranks stop with rank 1 named, the checkpoint stays, resume repeats the losses") {
  repa::test::ScratchDir dir("repa-dp-cli");
  write_config(dir);
  const int steps = 30;

  Launch whole = start(run_args(dir.file("run.json"), "whole", steps), dir.file("whole.err"));
  REQUIRE(finish(whole) == 0);
  const auto reference = losses_of(dir.file("runs/whole"));
  REQUIRE(reference.size() == static_cast<std::size_t>(steps));
  CHECK(repa::test::contains(repa::test::read_bytes(dir.file("whole.err")), "repa-train run: 2 processes"));

  // Killed once a checkpoint is written and a step after it is done.
  Launch killed = start(run_args(dir.file("run.json"), "killed", steps), dir.file("killed.err"));
  std::array<char, 1 << 16> line{};
  bool checkpointed = false, shot = false;
  int64_t rank1_pid = -1;
  std::string error_message;
  while (std::fgets(line.data(), line.size(), killed.events)) {
    const auto event = nlohmann::json::parse(line.data(), nullptr, false);
    if (!event.is_object()) continue;
    if (event["type"] == "checkpoint") checkpointed = true;
    if (event["type"] == "error") error_message = event["message"];
    if (!shot && checkpointed && event["type"] == "metrics" && event["step"].get<int64_t>() >= 3) {
      const auto lock = nlohmann::json::parse(repa::test::read_bytes(dir.file("runs/killed/ranks/rank-1/run.lock")));
      rank1_pid = lock["pid"].get<int64_t>();
      REQUIRE(::kill(static_cast<pid_t>(rank1_pid), SIGKILL) == 0);
      shot = true;
    }
  }
  REQUIRE(shot);
  CHECK(finish(killed) == 1);
  const auto launcher_err = repa::test::read_bytes(dir.file("killed.err"));
  INFO(launcher_err);
  CHECK(
      repa::test::contains(launcher_err, "rank 1 of 2 (pid " + std::to_string(rank1_pid) + ") was killed by signal 9"));
  INFO(error_message);
  CHECK(repa::test::contains(error_message, "rank 1 of 2 stopped responding"));
  CHECK(repa::test::contains(repa::test::read_bytes(dir.file("runs/killed/train.log")), "rank 1 of 2"));
  const auto status = nlohmann::json::parse(repa::test::read_bytes(dir.file("runs/killed/status.json")));
  CHECK(status["state"] == "failed");
  const auto done = losses_of(dir.file("runs/killed"));
  REQUIRE(done.size() < static_cast<std::size_t>(steps));
  std::string latest;
  for (const auto& entry : fs::directory_iterator(dir.file("runs/killed/checkpoints")))
    if (entry.path().filename().string().rfind("checkpoint-", 0) == 0 &&
        fs::exists(entry.path() / "trainer_state.json"))
      latest = std::max(latest, entry.path().filename().string(), [](const std::string& a, const std::string& b) {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
      });
  REQUIRE_FALSE(latest.empty());

  auto args = run_args(dir.file("run.json"), "killed", steps);
  args.insert(args.end(), {"--set", "resume_from_checkpoint=latest"});
  Launch resumed = start(args, dir.file("resumed.err"));
  int64_t first_step = -1;
  while (std::fgets(line.data(), line.size(), resumed.events)) {
    const auto event = nlohmann::json::parse(line.data(), nullptr, false);
    if (event.is_object() && event["type"] == "run_started") first_step = event["step"];
  }
  CHECK(finish(resumed) == 0);
  CHECK("checkpoint-" + std::to_string(first_step) == latest);
  const auto losses = losses_of(dir.file("runs/killed"));
  REQUIRE(losses.size() == static_cast<std::size_t>(steps));
  for (int64_t step = 1; step <= steps; ++step) {
    CAPTURE(step);
    CHECK(losses.at(step) == reference.at(step));
  }
}

TEST_CASE("launcher arguments: a bad process count and a launch inside a launched rank are refused by name") {
  repa::test::ScratchDir dir("repa-dp-args");
  write_config(dir);
  Launch zero = start({"run", "--config", dir.file("run.json"), "--nproc-per-node", "0"}, dir.file("zero.err"));
  CHECK(finish(zero) == 2);
  CHECK(repa::test::contains(repa::test::read_bytes(dir.file("zero.err")),
                             "--nproc-per-node expects a whole number from 1 to 64, got '0'"));
  ::setenv("WORLD_SIZE", "2", 1);
  Launch nested =
      start({"run", "--config", dir.file("run.json"), "--nproc-per-node", "2"}, dir.file("nested.err"), false);
  ::unsetenv("WORLD_SIZE");
  const int code = finish(nested);
  CHECK(code == 2);
  CHECK(repa::test::contains(repa::test::read_bytes(dir.file("nested.err")),
                             "--nproc-per-node inside a launched process (WORLD_SIZE is set)"));
}

TEST_CASE(
    "commands reach rank 0, which holds the other rank through a pause longer than the timeout; SIGTERM to "
    "the launcher stops both ranks at the same step with a checkpoint") {
  repa::test::ScratchDir dir("repa-dp-control");
  write_config(dir);
  auto args = run_args(dir.file("run.json"), "paused", 500);
  args.insert(args.end(), {"--set", "studio.distributed_timeout=5"});
  Launch paused = start(args, dir.file("paused.err"));
  std::array<char, 1 << 16> line{};
  auto send = [&](const std::string& command) {
    const std::string text = "{\"command\":\"" + command + "\"}\n";
    REQUIRE(::write(paused.commands, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  };
  bool sent_pause = false, resumed = false, finished_stopped = false;
  int64_t paused_at = -1, last_step = 0;
  std::chrono::steady_clock::time_point pause_started;
  while (std::fgets(line.data(), line.size(), paused.events)) {
    const auto event = nlohmann::json::parse(line.data(), nullptr, false);
    if (!event.is_object()) continue;
    if (event["type"] == "metrics") last_step = event["step"];
    if (!sent_pause && event["type"] == "metrics" && last_step >= 2) {
      send("pause");
      sent_pause = true;
    }
    if (event["type"] == "state" && event["state"] == "paused") {
      paused_at = event["step"];
      pause_started = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::seconds(7));  // past studio.distributed_timeout
      send("resume");
    }
    if (event["type"] == "state" && event["state"] == "running" && paused_at >= 0 && !resumed) {
      resumed = true;
      CHECK(std::chrono::steady_clock::now() - pause_started >= std::chrono::seconds(7));
    }
    if (resumed && event["type"] == "metrics" && last_step == paused_at + 2) ::kill(paused.pid, SIGTERM);
    if (event["type"] == "state" && event["state"] == "finished") finished_stopped = event["reason"] == "stopped";
  }
  CHECK(finish(paused) == 0);
  CHECK(resumed);
  CHECK(finished_stopped);
  REQUIRE(paused_at >= 2);
  const auto losses = losses_of(dir.file("runs/paused"));
  const int64_t stopped_at = losses.rbegin()->first;
  CHECK(stopped_at >= paused_at + 2);
  CHECK(stopped_at < 500);
  CHECK(
      fs::exists(dir.file("runs/paused/checkpoints/checkpoint-" + std::to_string(stopped_at) + "/trainer_state.json")));
  // Rank 1 stopped at the same step (its own status under ranks/).
  const auto rank1 = nlohmann::json::parse(repa::test::read_bytes(dir.file("runs/paused/ranks/rank-1/status.json")));
  CHECK(rank1["step"] == stopped_at);
  CHECK(rank1["state"] == "finished");
}
