// Hostile safetensors headers: deep nesting, sizes that overflow 64 bits, huge values in messages. Each is
// refused with an InputError naming the file and the tensor, in a message of bounded length.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "tests/test_support.h"

using repa::io::SafetensorsCheckpoint;
using repa::io::SafetensorsFile;
using repa::test::contains;

namespace {

std::string raw_file(const std::string& header, const std::string& data) {
  const uint64_t len = header.size();
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return bytes + header + data;
}

std::string open_error(const repa::test::ScratchDir& dir, const std::string& header, const std::string& data = "") {
  const auto path = dir.file("hostile.safetensors");
  repa::test::write_bytes(path, raw_file(header, data));
  return repa::test::error_of([&] { SafetensorsFile::open(path); });
}

std::string nested(int levels, const std::string& inner = "1") {
  return std::string(static_cast<std::size_t>(levels), '[') + inner +
         std::string(static_cast<std::size_t>(levels), ']');
}

}  // namespace

TEST_CASE("shape or data_offsets nested 65,000 levels deep is refused by name, without a crash") {
  repa::test::ScratchDir dir;
  const std::string deep = nested(65000);
  for (const std::string& header : {R"({"t":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,4]}})",
                                    R"({"t":{"dtype":"F32","shape":[1],"data_offsets":)" + deep + "}}"}) {
    const auto message = open_error(dir, header, std::string(4, '\0'));
    INFO(message.substr(0, 300));
    CHECK(contains(message, "hostile.safetensors"));
    CHECK(contains(message, "nested deeper than 64 levels"));
    CHECK(message.size() < 600);
  }
}

TEST_CASE("shape [2^62] of F32 with 0 bytes is refused: the byte count would wrap to 0") {
  repa::test::ScratchDir dir;
  const auto message =
      open_error(dir, R"({"huge":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})");
  CHECK(contains(message, "hostile.safetensors"));
  CHECK(contains(message, "tensor 'huge'"));
  CHECK(contains(message, "overflow"));

  // Element counts past 2^63 (LibTorch's limit) are refused even for 1-byte dtypes.
  const auto elements =
      open_error(dir, R"({"u":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})");
  CHECK(contains(elements, "tensor 'u'"));
  CHECK(contains(elements, "2^63"));

  // The largest product that fits is still checked against the data: 2^61 F64 would need 2^64 bytes.
  CHECK(contains(open_error(dir, R"({"d":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"),
                 "overflow"));
  // Zero-sized dimensions stay legal.
  CHECK(open_error(dir, R"({"z":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]}})").empty());
}

TEST_CASE("a megabyte shape, tensor name or offset list is quoted as a short excerpt") {
  repa::test::ScratchDir dir;
  std::string long_shape = "[";
  for (int i = 0; i < 200000; ++i) long_shape += "1,";
  long_shape += "-1]";
  auto message = open_error(dir, R"({"t":{"dtype":"F32","shape":)" + long_shape + R"(,"data_offsets":[0,4]}})");
  CHECK(contains(message, "not a non-negative integer"));
  CHECK(message.size() < 600);

  const std::string long_name(1 << 20, 'n');
  message = open_error(dir, R"({")" + long_name + R"(":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})");
  CHECK(contains(message, "unknown or unsupported dtype"));
  CHECK(message.size() < 600);

  message =
      open_error(dir, R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[")" + std::string(100000, '7') + "\",4]}}");
  CHECK(contains(message, "data_offsets"));
  CHECK(message.size() < 600);
}

TEST_CASE("a top-level name listed twice is still found, and a 1e400 offset is named") {
  repa::test::ScratchDir dir;
  const auto twice = open_error(dir,
                                R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                                std::string(1, '\0'));
  CHECK(contains(twice, "'a' is listed twice"));
  CHECK(contains(open_error(dir, R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1e400]}})"), "outside the range"));
}

TEST_CASE("a sharded index nested 65,000 levels deep names the index") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("model.safetensors.index.json");
  repa::test::write_bytes(path, R"({"weight_map":{"a":)" + nested(65000, "\"x\"") + "}}");
  const auto message = repa::test::error_of([&] { SafetensorsCheckpoint::open(path); });
  CHECK(contains(message, "model.safetensors.index.json"));
  CHECK(contains(message, "nested deeper"));
}
