// A JSON-lines file torn by an interrupted write is repaired before the next run appends to it.
#include <doctest/doctest.h>

#include <string>

#include "core/io/jsonl_file.h"
#include "tests/test_support.h"

using repa::io::repair_jsonl_tail;
using repa::test::contains;

TEST_CASE("a torn last line is cut, and the file ends on the last whole line") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("metrics.jsonl");
  repa::test::write_bytes(path, "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.4}\n{\"step\":3,\"lo");
  const auto note = repair_jsonl_tail(path);
  CHECK(contains(note, "cut a torn last line of 13 bytes"));
  CHECK(contains(note, "metrics.jsonl"));
  CHECK(contains(note, "{\\\"step\\\":3,\\\"lo"));
  CHECK(repa::test::read_bytes(path) == "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.4}\n");
  // Repaired files are left alone.
  CHECK(repair_jsonl_tail(path).empty());
  CHECK(repa::test::read_bytes(path) == "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.4}\n");
}

TEST_CASE("a whole event missing only its newline is kept; a file that is one torn line becomes empty") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("events.jsonl");
  repa::test::write_bytes(path, "{\"type\":\"state\"}\n{\"type\":\"heartbeat\",\"step\":4}");
  CHECK(contains(repair_jsonl_tail(path), "completed the last line"));
  CHECK(repa::test::read_bytes(path) == "{\"type\":\"state\"}\n{\"type\":\"heartbeat\",\"step\":4}\n");

  repa::test::write_bytes(path, std::string(3 << 20, 'x'));  // longer than any event, no newline at all
  CHECK(contains(repair_jsonl_tail(path), "3145728 bytes"));
  CHECK(repa::test::read_bytes(path).empty());

  CHECK(repair_jsonl_tail(dir.file("absent.jsonl")).empty());
  repa::test::write_bytes(path, "");
  CHECK(repair_jsonl_tail(path).empty());
}
