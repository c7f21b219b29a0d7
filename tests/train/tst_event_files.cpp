// A run appending to event files a previous run left with a torn last line: the torn line is cut and said,
// and every line the new run writes parses.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/train/event_sink.h"
#include "core/train/run_directory.h"
#include "tests/test_support.h"

using repa::test::contains;
using repa::train::EventSink;
using repa::train::RunDirectory;

namespace {
std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST_CASE(
    "opening a run folder cuts torn lines of metrics.jsonl and events.jsonl; new events start on their own line") {
  repa::test::ScratchDir dir;
  const auto run = dir.file("run");
  std::filesystem::create_directories(run);
  repa::test::write_bytes(run + "/metrics.jsonl", "{\"type\":\"metrics\",\"step\":1,\"loss\":2}\n{\"type\":\"met");
  repa::test::write_bytes(run + "/events.jsonl", "{\"type\":\"state\",\"state\":\"running\"}\n{\"ty");
  RunDirectory directory(run);
  const auto notes = directory.take_notes();
  REQUIRE(notes.size() == 2);
  CHECK(contains(notes[0], "metrics.jsonl"));
  CHECK(contains(notes[1], "events.jsonl"));

  EventSink sink;
  sink.open_run_directory(run);
  sink.emit("metrics", {{"step", 2}, {"loss", 1.5}});
  const auto metrics = lines_of(run + "/metrics.jsonl");
  REQUIRE(metrics.size() == 2);
  for (const auto& line : metrics) CHECK(nlohmann::json::parse(line, nullptr, false).is_object());
  CHECK(nlohmann::json::parse(metrics[1])["step"] == 2);
  for (const auto& line : lines_of(run + "/events.jsonl"))
    CHECK(nlohmann::json::parse(line, nullptr, false).is_object());
}

TEST_CASE("an event sink used without a run folder object still never appends after half a line, and logs it") {
  repa::test::ScratchDir dir;
  repa::test::write_bytes(dir.file("events.jsonl"), "{\"type\":\"log\"}\n{\"type\":\"lo");
  EventSink sink;
  sink.open_run_directory(dir.path().string());
  sink.emit("state", {{"state", "running"}});
  const auto events = lines_of(dir.file("events.jsonl"));
  REQUIRE(events.size() == 3);
  const auto note = nlohmann::json::parse(events[1]);
  CHECK(note["type"] == "log");
  CHECK(note["level"] == "warning");
  CHECK(contains(note["message"].get<std::string>(), "cut a torn last line"));
  CHECK(nlohmann::json::parse(events[2])["state"] == "running");
}
