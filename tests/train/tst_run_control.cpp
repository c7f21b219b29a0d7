// Commands on stdin and the event files of a run.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>
#include <thread>

#include "core/train/event_sink.h"
#include "core/train/run_control.h"
#include "core/train/run_directory.h"
#include "tests/test_support.h"

using namespace repa::train;

TEST_CASE("commands parse from JSON objects, JSON strings and bare words; others say what is known") {
  Command c;
  std::string error;
  CHECK(parse_command("{\"command\": \"pause\"}", c, error));
  CHECK(c == Command::Pause);
  CHECK(parse_command("{\"type\":\"checkpoint\"}", c, error));
  CHECK(c == Command::Checkpoint);
  CHECK(parse_command("\"sample\"", c, error));
  CHECK(c == Command::Sample);
  CHECK(parse_command(" stop\r", c, error));
  CHECK(c == Command::Stop);
  CHECK_FALSE(parse_command("{\"command\": \"explode\"}", c, error));
  CHECK(error.find("explode") != std::string::npos);
  CHECK(error.find("checkpoint") != std::string::npos);
}

TEST_CASE("lines written into a pipe arrive in order through the reader thread") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  RunControl control;
  std::vector<std::string> errors;
  control.listen(fds[0], [&](const std::string& e) { errors.push_back(e); });
  const std::string text = "{\"command\":\"pause\"}\nnonsense\n{\"command\":\"resume\"}\nsto";
  REQUIRE(::write(fds[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  REQUIRE(::write(fds[1], "p\n", 2) == 2);
  std::deque<Command> got;
  for (int i = 0; i < 50 && got.size() < 3; ++i) {
    control.wait(100);
    for (auto c : control.take()) got.push_back(c);
  }
  ::close(fds[1]);
  REQUIRE(got.size() == 3);
  CHECK(got[0] == Command::Pause);
  CHECK(got[1] == Command::Resume);
  CHECK(got[2] == Command::Stop);
  CHECK(errors.size() == 1);
  ::close(fds[0]);
}

TEST_CASE("events go to events.jsonl, metrics also to metrics.jsonl; status.json merges fields") {
  repa::test::ScratchDir dir;
  RunDirectory run(dir.file("run"));
  EventSink sink;
  sink.open_run_directory(run.path());
  int heard = 0;
  sink.add_listener([&](const nlohmann::json& e) { heard += e["type"] == "metrics"; });
  sink.emit("state", {{"state", "running"}});
  sink.emit("metrics", {{"step", 1}, {"loss", 0.5}});
  sink.emit("metrics", {{"step", 2}, {"loss", std::nan("")}});
  run.update_status({{"state", "running"}, {"step", 2}});
  run.update_status({{"step", 3}});
  CHECK(heard == 2);
  std::ifstream events(run.file("events.jsonl")), metrics(run.file("metrics.jsonl"));
  std::string line;
  int event_lines = 0, metric_lines = 0;
  while (std::getline(events, line)) ++event_lines;
  std::vector<nlohmann::json> rows;
  while (std::getline(metrics, line)) {
    ++metric_lines;
    rows.push_back(nlohmann::json::parse(line));
  }
  CHECK(event_lines == 3);
  CHECK(metric_lines == 2);
  CHECK(rows[0]["loss"] == 0.5);
  CHECK(rows[1]["loss"].is_null());  // NaN is not JSON
  CHECK(rows[0].contains("time"));
  const auto status = nlohmann::json::parse(repa::test::read_bytes(run.file("status.json")));
  CHECK(status["state"] == "running");
  CHECK(status["step"] == 3);
  CHECK(status.contains("heartbeat"));
}
