// One worker per run folder: the second RunDirectory on a folder is refused naming the holder, a lock left by a
// killed worker is taken over with a note, and the window's question "who holds this folder" has an answer.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/base/error.h"
#include "core/base/run_lock.h"
#include "core/train/run_directory.h"
#include "tests/test_support.h"

using repa::RunLock;
using repa::test::contains;
using repa::test::error_of;
using repa::train::RunDirectory;
namespace fs = std::filesystem;

namespace {
std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}
}  // namespace

TEST_CASE("a second worker on a held run folder is refused naming pid, host and since; release frees it") {
  repa::test::ScratchDir dir;
  const auto run = dir.file("run");
  auto first = std::make_unique<RunDirectory>(run);
  CHECK(first->take_notes().empty());
  const std::string pid = "pid " + std::to_string(::getpid());

  const auto message = error_of([&] { RunDirectory second(run); });
  CHECK(contains(message, "in use by another worker"));
  CHECK(contains(message, pid));
  CHECK(contains(message, "on host " + host_name()));
  CHECK(contains(message, "since 20"));
  CHECK(contains(message, "run.lock"));

  const auto holder = RunLock::holder(run);
  REQUIRE(holder.has_value());
  CHECK(contains(*holder, pid));

  first.reset();
  CHECK_FALSE(RunLock::holder(run).has_value());
  RunDirectory again(run);
  CHECK(again.take_notes().empty());  // a clean release leaves nothing to take over
}

TEST_CASE("a lock whose holder was killed is taken over with a note naming it") {
  repa::test::ScratchDir dir;
  const auto run = dir.file("run");
  fs::create_directories(run);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Hold the lock, then die without running any destructor, as kill -9 would.
    new RunLock(run);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK_FALSE(RunLock::holder(run).has_value());  // the kernel dropped it with the process

  RunDirectory taken(run);
  const auto notes = taken.take_notes();
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], "took over"));
  CHECK(contains(notes[0], "pid " + std::to_string(child)));
  CHECK(contains(notes[0], "no longer running"));
}

TEST_CASE("the window finds the holder of the folder a config would run in") {
  repa::test::ScratchDir dir;
  const auto config = dir.file("run.json");
  repa::test::write_bytes(config, R"({"output_dir":"out","studio":{"run_name":"busy"}})");
  CHECK_FALSE(RunLock::holder_for_config(config, dir.path().string()).has_value());
  RunDirectory held(dir.file("out/busy"));
  const auto holder = RunLock::holder_for_config(config, dir.path().string());
  REQUIRE(holder.has_value());
  CHECK(contains(*holder, "pid " + std::to_string(::getpid())));
  CHECK(contains(*holder, "out/busy"));
  // No run name: every run gets a new folder, nobody can hold it.
  repa::test::write_bytes(config, R"({"output_dir":"out"})");
  CHECK_FALSE(RunLock::holder_for_config(config, dir.path().string()).has_value());
}

TEST_CASE("opening a run folder cleans what a killed checkpoint write left, and says so") {
  repa::test::ScratchDir dir;
  const auto run = dir.file("run");
  fs::create_directories(run + "/checkpoints/.tmp-checkpoint-8-77");
  repa::test::write_bytes(run + "/checkpoints/.tmp-checkpoint-8-77/model.safetensors", "half");
  RunDirectory opened(run);
  CHECK_FALSE(fs::exists(run + "/checkpoints/.tmp-checkpoint-8-77"));
  const auto notes = opened.take_notes();
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], ".tmp-checkpoint-8-77"));
}
