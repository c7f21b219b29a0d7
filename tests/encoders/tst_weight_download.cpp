// Downloads against a local HTTP server the test starts: complete, interrupted and resumed, a server
// without ranges, checksum and size mismatches, unknown digests, HTTP errors.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "core/base/error.h"
#include "core/encoders/sha256.h"
#include "core/encoders/weight_download.h"
#include "tests/encoders/local_http_server.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using repa::encoders::DownloadRequest;
using repa::encoders::download_file;
using repa::encoders::partial_path;
using repa::test::LocalHttpServer;
using repa::test::ScratchDir;

namespace {

// Bytes that differ everywhere, so a resume at a wrong offset would change the digest.
std::string test_payload(std::size_t size) {
  std::string bytes(size, '\0');
  uint32_t x = 12345;
  for (auto& b : bytes) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<char>(x >> 24);
  }
  return bytes;
}

std::string digest_of(const std::string& bytes) {
  repa::encoders::Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

}  // namespace

TEST_CASE("a complete download is checked and renamed into place") {
  const auto payload = test_payload(300000);
  LocalHttpServer server(payload, {});
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url();
  r.destination = dir.file("enc/model.safetensors");
  r.expected_bytes = payload.size();
  r.expected_sha256 = digest_of(payload);
  uint64_t last_received = 0;
  r.on_progress = [&](const repa::encoders::DownloadProgress& p) { last_received = p.received; };
  const auto result = download_file(r);
  CHECK(result.size_checked);
  CHECK(result.digest_checked);
  CHECK(result.resumed_from == 0);
  CHECK(result.sha256 == r.expected_sha256);
  CHECK(repa::test::read_bytes(r.destination) == payload);
  CHECK_FALSE(fs::exists(partial_path(r.destination)));
  CHECK(last_received == payload.size());
}

TEST_CASE("an interrupted download keeps its partial file and the next run resumes with a Range request") {
  const auto payload = test_payload(500000);
  LocalHttpServer::Options options;
  options.drop_first_after = 123457;
  LocalHttpServer server(payload, options);
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url();
  r.destination = dir.file("model.safetensors");
  r.expected_bytes = payload.size();
  r.expected_sha256 = digest_of(payload);

  std::string message;
  try {
    download_file(r);
  } catch (const repa::Error& e) {
    message = e.what();
  }
  CHECK(message.find("interrupted") != std::string::npos);
  CHECK(message.find("resume") != std::string::npos);
  CHECK_FALSE(fs::exists(r.destination));
  REQUIRE(fs::exists(partial_path(r.destination)));
  const auto kept = fs::file_size(partial_path(r.destination));
  CHECK(kept == 123457);

  std::string notices;
  r.on_notice = [&](const std::string& n) { notices += n + "\n"; };
  const auto result = download_file(r);
  CHECK(result.resumed_from == kept);
  CHECK(result.digest_checked);
  CHECK(repa::test::read_bytes(r.destination) == payload);
  const auto ranges = server.ranges_seen();
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].empty());
  CHECK(ranges[1] == "bytes=123457-");
  CHECK(notices.find("resuming") != std::string::npos);
}

TEST_CASE("a server that ignores Range gets the whole file again") {
  const auto payload = test_payload(100000);
  LocalHttpServer::Options options;
  options.ranges = false;
  LocalHttpServer server(payload, options);
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url();
  r.destination = dir.file("model.safetensors");
  r.expected_bytes = payload.size();
  r.expected_sha256 = digest_of(payload);
  repa::test::write_bytes(partial_path(r.destination), payload.substr(0, 4000));
  const auto result = download_file(r);
  CHECK(result.resumed_from == 4000);
  CHECK(repa::test::read_bytes(r.destination) == payload);
}

TEST_CASE("a checksum mismatch fails, names both digests and leaves nothing behind") {
  const auto payload = test_payload(50000);
  LocalHttpServer server(payload, {});
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url();
  r.destination = dir.file("model.safetensors");
  r.expected_bytes = payload.size();
  r.expected_sha256 = std::string(64, '0');
  std::string message;
  try {
    download_file(r);
  } catch (const repa::Error& e) {
    message = e.what();
  }
  CHECK(message.find("sha256 mismatch") != std::string::npos);
  CHECK(message.find(std::string(64, '0')) != std::string::npos);
  CHECK(message.find(digest_of(payload)) != std::string::npos);
  CHECK_FALSE(fs::exists(r.destination));
  CHECK_FALSE(fs::exists(partial_path(r.destination)));
}

TEST_CASE("a size mismatch fails naming both sizes") {
  const auto payload = test_payload(20000);
  LocalHttpServer server(payload, {});
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url();
  r.destination = dir.file("model.safetensors");
  r.expected_bytes = 19999;
  std::string message;
  try {
    download_file(r);
  } catch (const repa::Error& e) {
    message = e.what();
  }
  CHECK(message.find("20000 bytes") != std::string::npos);
  CHECK(message.find("19999") != std::string::npos);
  CHECK_FALSE(fs::exists(r.destination));
}

TEST_CASE("unknown size and digest are reported as skipped checks") {
  const auto payload = test_payload(1000);
  LocalHttpServer server(payload, {});
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url();
  r.destination = dir.file("model.safetensors");
  std::string notices;
  r.on_notice = [&](const std::string& n) { notices += n + "\n"; };
  const auto result = download_file(r);
  CHECK_FALSE(result.size_checked);
  CHECK_FALSE(result.digest_checked);
  CHECK(result.sha256 == digest_of(payload));
  CHECK(notices.find("size check skipped") != std::string::npos);
  CHECK(notices.find("digest check skipped") != std::string::npos);
  CHECK(repa::test::read_bytes(r.destination) == payload);
}

TEST_CASE("an HTTP error names the URL and the status") {
  LocalHttpServer server("x", {});
  ScratchDir dir("repa-fetch");
  DownloadRequest r;
  r.url = server.url("/missing.safetensors");
  r.destination = dir.file("model.safetensors");
  std::string message;
  try {
    download_file(r);
  } catch (const repa::Error& e) {
    message = e.what();
  }
  CHECK(message.find(r.url) != std::string::npos);
  CHECK(message.find("HTTP 404") != std::string::npos);
  CHECK_FALSE(fs::exists(r.destination));
}
