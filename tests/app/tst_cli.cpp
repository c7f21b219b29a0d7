// repa-train's command line: --version, --help, exit codes for unknown commands and bad arguments, inspect, bench.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "core/io/safetensors.h"
#include "tests/test_support.h"

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

}  // namespace

TEST_CASE("--version names the program, LibTorch and the thread count") {
  const auto result = run("--threads 2 --version");
  CHECK(result.code == 0);
  CHECK(result.output.find("repa-train ") == 0);
  CHECK(result.output.find("libtorch ") != std::string::npos);
  CHECK(result.output.find("threads 2") != std::string::npos);
}

TEST_CASE("--help lists the commands and the exit codes") {
  const auto result = run("--help");
  CHECK(result.code == 0);
  CHECK(result.output.find("Usage: repa-train") != std::string::npos);
  CHECK(result.output.find("inspect") != std::string::npos);
  CHECK(result.output.find("Exit codes") != std::string::npos);
}

TEST_CASE("an unknown command and a bad --threads exit with code 2 and say why") {
  auto result = run("frobnicate");
  CHECK(result.code == 2);
  CHECK(result.output.find("unknown command 'frobnicate'") != std::string::npos);
  result = run("--threads many --version");
  CHECK(result.code == 2);
  CHECK(result.output.find("'many'") != std::string::npos);
}

TEST_CASE("inspect lists a checkpoint and rejects a truncated one with the tensor named") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("w.safetensors");
  repa::io::save_safetensors(path, {{"blocks.0.attn.qkv.weight", torch::zeros({6, 2})}}, {{"format", "pt"}});
  auto result = run("inspect " + path);
  CHECK(result.code == 0);
  CHECK(result.output.find("blocks.0.attn.qkv.weight") != std::string::npos);
  CHECK(result.output.find("6x2") != std::string::npos);
  CHECK(result.output.find("format = pt") != std::string::npos);

  auto bytes = repa::test::read_bytes(path);
  bytes.resize(bytes.size() - 4);
  repa::test::write_bytes(path, bytes);
  result = run("inspect " + path);
  CHECK(result.code == 2);
  CHECK(result.output.find("blocks.0.attn.qkv.weight") != std::string::npos);
  CHECK(result.output.find("w.safetensors") != std::string::npos);
}

TEST_CASE("bench times a tiny SiT step with and without REPA and reports JSON with an operator profile") {
  const auto result = run("bench --json --case sit,sit_repa --iters 2 --warmup 1 --threads 1 --batch 2 --depth 2 "
                          "--width 64 --heads 2 --teacher-image 28 --profile 3");
  REQUIRE(result.code == 0);
  const auto report = nlohmann::json::parse(result.output);
  CHECK(report["side"] == "libtorch");
  CHECK(report["threads"] == 1);
  CHECK(report["malloc"].get<std::string>().rfind("malloc:", 0) == 0);
  for (const char* name : {"sit", "sit_repa"}) {
    const auto& r = report["results"][name];
    CHECK(r["median_ms"].get<double>() > 0);
    CHECK(r["min_ms"].get<double>() <= r["median_ms"].get<double>());
    REQUIRE(r["profile"].size() == 3);
    CHECK(r["profile"][0]["self_ms"].get<double>() >= r["profile"][2]["self_ms"].get<double>());
    CHECK(r["profile"][0]["calls"].get<double>() > 0);
  }
  CHECK(report["results"]["sit_repa"]["teacher_tokens"] == 4);
  CHECK(report["ratios"]["repa_cached_over_vanilla"].get<double>() > 0);
}

TEST_CASE("bench rejects an unknown case and a non-numeric option with code 2") {
  auto result = run("bench --case sit,warp");
  CHECK(result.code == 2);
  CHECK(result.output.find("unknown case 'warp'") != std::string::npos);
  result = run("bench --iters ten");
  CHECK(result.code == 2);
  CHECK(result.output.find("--iters expects a number, got 'ten'") != std::string::npos);
}
