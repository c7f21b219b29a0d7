// repa-train against hostile input and signals: deep JSON, overflowing numbers, a null or NUL-laden config,
// bad --threads, a run name that leaves output_dir, a symlink loop, a batch that cannot fit, SIGTERM during
// set-up, SIGHUP mid-run, and a failure inside the loop that must say why on stderr. Exit 2 names the file or
// key; nothing crashes.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/data/image.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using repa::test::contains;

namespace {

struct Result {
  int code;  // exit status, or -signal
  std::string output;
};

// Runs repa-train with `args` (no shell), stdout and stderr together.
Result run(const std::vector<std::string>& args) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    std::vector<char*> argv{const_cast<char*>(REPA_TRAIN_EXE)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(REPA_TRAIN_EXE, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  Result result{0, ""};
  std::array<char, 4096> buffer{};
  for (ssize_t n; (n = ::read(out[0], buffer.data(), buffer.size())) > 0;)
    result.output.append(buffer.data(), static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return result;
}

// A background worker whose stdout (events) and stderr go to files, so the test can poll them.
struct Background {
  pid_t pid = -1;
  std::string stdout_path, stderr_path;
};

Background start(const std::vector<std::string>& args, const std::string& folder) {
  Background w{-1, folder + "/stdout.txt", folder + "/stderr.txt"};
  w.pid = ::fork();
  REQUIRE(w.pid >= 0);
  if (w.pid == 0) {
    std::freopen(w.stdout_path.c_str(), "w", stdout);
    std::freopen(w.stderr_path.c_str(), "w", stderr);
    std::freopen("/dev/null", "r", stdin);
    std::vector<char*> argv{const_cast<char*>(REPA_TRAIN_EXE)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(REPA_TRAIN_EXE, argv.data());
    ::_exit(127);
  }
  return w;
}

int wait_for(const Background& w) {
  int status = 0;
  ::waitpid(w.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Polls `path` until it contains `text` (or the time runs out).
bool wait_for_text(const std::string& path, const std::string& text, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (contains(repa::test::read_bytes(path), text)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

nlohmann::json status_of(const std::string& run_dir) {
  return nlohmann::json::parse(repa::test::read_bytes(run_dir + "/status.json"));
}

// The demo without REPA: the quickest real run (no teacher cache to fill).
std::vector<std::string> quick_demo(const std::string& out, const std::string& name, int steps) {
  return {"--threads",
          "1",
          "run",
          "--preset",
          "demo",
          "--set",
          "output_dir=" + out,
          "--set",
          "studio.run_name=" + name,
          "--set",
          "max_train_steps=" + std::to_string(steps),
          "--set",
          "crepa_enabled=false",
          "--set",
          "validation_step_interval=0"};
}

}  // namespace

TEST_CASE("a config nested 65,536 levels deep, in a file or a --set value, exits 2 naming it") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("deep.json");
  repa::test::write_bytes(path, "{\"crepa_lambda\": " + nested(65536) + "}");
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"validate"}, {"run"}, {"export", "--format", "studio", "--out", dir.file("export")}}) {
    auto args = command;
    args.push_back(path);
    const auto result = run(args);
    CHECK_MESSAGE(result.code == 2, command[0]);
    CHECK_MESSAGE(contains(result.output, "config file '" + path + "': JSON nested deeper than 64 levels"), command[0]);
  }
  for (const char* command : {"validate", "run"}) {
    const auto result = run({command, "--preset", "demo", "--set", "crepa_lambda=" + std::string(65536, '[')});
    CHECK_MESSAGE(result.code == 2, command);
    CHECK_MESSAGE(contains(result.output, "crepa_lambda: --set crepa_lambda: JSON nested deeper than 64 levels"),
                  command);
    CHECK(result.output.size() < 1000);  // the value is quoted as an excerpt, not 64 KB of brackets
  }
}

TEST_CASE("overflowing numbers, a null config, NUL bytes and --threads -5 exit 2 naming the file or key") {
  repa::test::ScratchDir dir;
  for (const char* number : {"1e400", "1e309"}) {
    const auto path = dir.file(std::string(number) + ".json");
    repa::test::write_bytes(path, std::string("{\"learning_rate\": ") + number + "}");
    auto result = run({"run", path});
    CHECK(result.code == 2);
    CHECK(contains(result.output, "config file '" + path + "': a number is outside the range of a double"));
    result = run({"validate", "--preset", "demo", "--set", std::string("learning_rate=") + number});
    CHECK(result.code == 2);
    CHECK(contains(result.output, "learning_rate:"));
  }
  auto result = run({"run", "--preset", "demo", "--set", "max_train_steps=18446744073709551615"});
  CHECK(result.code == 2);
  CHECK(contains(result.output,
                 "max_train_steps: 18446744073709551615 is not a whole number (above 9223372036854775807"));
  result = run({"validate", "--preset", "demo", "--set", "max_train_steps=9223372036854775807"});
  CHECK(result.code == 2);
  CHECK(contains(result.output, "max_train_steps: 9223372036854775807 is above 1000000000000 steps"));

  const auto null_path = dir.file("null.json");
  repa::test::write_bytes(null_path, "null");
  result = run({"run", null_path});
  CHECK(result.code == 2);
  CHECK(contains(result.output, "config file '" + null_path + "' must hold a JSON object of options, got null"));

  const auto nul_path = dir.file("nul.json");
  repa::test::write_bytes(nul_path, std::string("{\"seed\": 1}\0{}", 14));
  result = run({"validate", nul_path});
  CHECK(result.code == 2);
  CHECK(contains(result.output, "config file '" + nul_path + "' holds a NUL byte at offset 11"));

  for (const char* threads : {"-5", "12abc", "99999999999"}) {
    result = run({"--threads", threads, "validate", "--preset", "demo"});
    CHECK_MESSAGE(result.code == 2, threads);
    CHECK(contains(result.output,
                   std::string("--threads expects a whole number from 0 (every core) to 4096, got '") + threads + "'"));
  }
}

TEST_CASE("a run name that leaves output_dir exits 2 and creates nothing outside") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  for (const char* name : {"../x", "..", "a/b"}) {
    const auto result =
        run({"run", "--preset", "demo", "--set", "output_dir=" + out, "--set", std::string("studio.run_name=") + name});
    CHECK_MESSAGE(result.code == 2, name);
    CHECK_MESSAGE(contains(result.output, "studio.run_name:"), name);
    CHECK_MESSAGE(contains(result.output, "a run name is one folder name inside output_dir"), name);
  }
  CHECK_FALSE(fs::exists(dir.file("x")));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a symlink loop in the dataset exits 2 naming the link") {
  repa::test::ScratchDir dir;
  fs::create_directories(dir.path() / "data" / "cats");
  repa::data::Image image(8, 8);
  repa::data::write_png(dir.file("data/cats/a.png"), image);
  fs::create_directory_symlink("..", dir.path() / "data" / "cats" / "loop");
  const auto result = run({"--threads", "1", "run", "--preset", "demo", "--set", "output_dir=" + dir.file("runs"),
                           "--set", "studio.dataset_dir=" + dir.file("data"), "--set", "crepa_enabled=false"});
  CHECK(result.code == 2);
  CHECK(contains(result.output, "the link '" + dir.file("data/cats/loop") + "'"));
  CHECK(contains(result.output, "symlink loop"));
}

TEST_CASE("train_batch_size 100000000 is refused before allocating, with the estimate and the machine's memory") {
  repa::test::ScratchDir dir;
  const auto start = std::chrono::steady_clock::now();
  auto result = run({"--threads", "1", "run", "--preset", "demo", "--set", "output_dir=" + dir.file("runs"), "--set",
                     "train_batch_size=100000000"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(result.code == 2);
  CHECK(contains(result.output, "train_batch_size 100000000: one training step needs about"));
  CHECK(contains(result.output, "TiB"));
  CHECK(contains(result.output, "available"));
  CHECK(contains(result.output, "studio.skip_memory_check=true"));
  CHECK(seconds < 10);
  CHECK_FALSE(fs::exists(dir.file("runs")));  // refused before the run folder or the demo dataset
}

TEST_CASE("SIGTERM during set-up ends the run within a second and writes no checkpoint") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  // A ViT-B/14 teacher at 224 px makes the teacher-token cache fill take many seconds on one thread.
  auto worker =
      start({"--threads", "1", "run", "--preset", "demo", "--events", "stdio", "--set", "output_dir=" + out, "--set",
             "studio.run_name=setup", "--set", "crepa_encoder=dinov2_vitb14", "--set", "crepa_encoder_image_size=224"},
            dir.path().string());
  REQUIRE(wait_for_text(worker.stdout_path, "images, 6 classes", 120));  // the dataset is read; caches fill next
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto signalled = std::chrono::steady_clock::now();
  ::kill(worker.pid, SIGTERM);
  const int code = wait_for(worker);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  MESSAGE("SIGTERM during set-up to exit: " << seconds << " s");
  CHECK(code == 0);
  CHECK(seconds < 2.0);  // 1 s promised; slack for a loaded 2-core machine
  CHECK(contains(repa::test::read_bytes(worker.stderr_path), "during set-up"));
  CHECK(contains(repa::test::read_bytes(worker.stderr_path), "no checkpoint was written"));
  CHECK(fs::is_empty(out + "/setup/checkpoints"));
  const auto status = status_of(out + "/setup");
  CHECK(status["state"] == "finished");
  CHECK(status["reason"] == "stopped");
}

TEST_CASE("SIGHUP mid-run checkpoints and finishes like SIGTERM; fp16 on CPU says it runs in fp32") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  auto args = quick_demo(out, "hup", 400);
  for (const char* extra : {"--set", "mixed_precision=fp16", "--set", "checkpoint_step_interval=1000"})
    args.push_back(extra);
  auto worker = start(args, dir.path().string());
  const std::string run_dir = out + "/hup";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline &&
         !contains(repa::test::read_bytes(run_dir + "/metrics.jsonl"), "\"step\":3,"))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(worker.pid, SIGHUP);
  CHECK(wait_for(worker) == 0);
  const auto status = status_of(run_dir);
  CHECK(status["state"] == "finished");
  CHECK(status["reason"] == "stopped");
  const int64_t step = status["step"].get<int64_t>();
  CHECK(step >= 3);
  CHECK(step < 400);
  CHECK(fs::exists(run_dir + "/checkpoints/checkpoint-" + std::to_string(step) + "/trainer_state.json"));
  const auto errors = repa::test::read_bytes(worker.stderr_path);
  CHECK(contains(errors,
                 "mixed_precision \"fp16\": the studio's trainer has no fp16 path; the run computes in "
                 "fp32 (CPU)"));
  CHECK(contains(repa::test::read_bytes(run_dir + "/train.log"), "the run computes in fp32"));
}

TEST_CASE("a failure inside the training loop exits 1 and prints its reason on stderr, not only in train.log") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  fs::create_directories(out + "/blocked");
  repa::test::write_bytes(out + "/blocked/checkpoints", "a file where the checkpoint folder should be");
  auto args = quick_demo(out, "blocked", 2);
  args.push_back("--set");
  args.push_back("checkpoint_step_interval=1");
  const auto result = run(args);
  CHECK(result.code == 1);
  CHECK(contains(result.output, "repa-train run: "));
  CHECK(contains(result.output, "checkpoints"));
  CHECK(contains(result.output, "(run folder " + out + "/blocked)"));
}
