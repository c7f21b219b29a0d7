// TensorBoard event files: CRC-32C against published check values, and a file written by
// TensorBoardWriter decoded here independently (record framing, both masked CRCs, the Event fields).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/io/tensorboard_events.h"
#include "tests/test_support.h"

namespace {

uint32_t mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

template <typename T>
T fixed(const std::string& s, std::size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

uint64_t varint(const std::string& s, std::size_t& at) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<uint8_t>(s.at(at++));
    v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return v;
  }
}

struct Field {
  int number = 0;
  int wire = 0;
  uint64_t integer = 0;  // varint, fixed64, fixed32 as bits
  std::string bytes;
};

std::vector<Field> fields(const std::string& message) {
  std::vector<Field> out;
  std::size_t at = 0;
  while (at < message.size()) {
    Field f;
    const uint64_t key = varint(message, at);
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0)
      f.integer = varint(message, at);
    else if (f.wire == 1)
      f.integer = fixed<uint64_t>(message, at), at += 8;
    else if (f.wire == 5)
      f.integer = fixed<uint32_t>(message, at), at += 4;
    else if (f.wire == 2) {
      const uint64_t n = varint(message, at);
      f.bytes = message.substr(at, n);
      at += n;
    } else {
      FAIL("unexpected wire type " << f.wire);
    }
    out.push_back(f);
  }
  return out;
}

double as_double(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

float as_float(uint64_t bits) {
  const auto b = static_cast<uint32_t>(bits);
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

}  // namespace

TEST_CASE("CRC-32C matches the published check values") {
  CHECK(repa::io::crc32c("123456789", 9) == 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  CHECK(repa::io::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720 B.4
  CHECK(repa::io::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  CHECK(repa::io::masked_crc32c("123456789", 9) == mask(0xE3069283u));
}

TEST_CASE("a written event file decodes to its file_version and scalar events with valid CRCs") {
  repa::test::ScratchDir dir;
  std::string path;
  {
    repa::io::TensorBoardWriter writer(dir.file("tb"), 1700000000.5);
    writer.add_scalars(1, 1700000001.25, {{"loss", 0.75f}, {"crepa_loss", -0.5f}});
    writer.add_scalars(300, 1700000100.0, {{"loss", 0.125f}});
    writer.flush();
    path = writer.path();
  }
  CHECK(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.1700000000.", 0) == 0);
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::vector<std::string> records;
  std::size_t at = 0;
  while (at < file.size()) {
    REQUIRE(at + 12 <= file.size());
    const auto length = fixed<uint64_t>(file, at);
    CHECK(fixed<uint32_t>(file, at + 8) == mask(repa::io::crc32c(file.data() + at, 8)));
    REQUIRE(at + 12 + length + 4 <= file.size());
    const std::string data = file.substr(at + 12, length);
    CHECK(fixed<uint32_t>(file, at + 12 + length) == mask(repa::io::crc32c(data.data(), data.size())));
    records.push_back(data);
    at += 12 + length + 4;
  }
  REQUIRE(records.size() == 3);

  const auto first = fields(records[0]);
  REQUIRE(first.size() == 2);
  CHECK(first[0].number == 1);
  CHECK(first[0].wire == 1);
  CHECK(as_double(first[0].integer) == 1700000000.5);
  CHECK(first[1].number == 3);
  CHECK(first[1].bytes == "brain.Event:2");

  const auto second = fields(records[1]);
  REQUIRE(second.size() == 3);
  CHECK(as_double(second[0].integer) == 1700000001.25);
  CHECK(second[1].number == 2);
  CHECK(second[1].integer == 1);
  CHECK(second[2].number == 5);
  const auto values = fields(second[2].bytes);
  REQUIRE(values.size() == 2);
  const auto loss = fields(values[0].bytes);
  REQUIRE(loss.size() == 2);
  CHECK(loss[0].number == 1);
  CHECK(loss[0].bytes == "loss");
  CHECK(loss[1].number == 2);
  CHECK(loss[1].wire == 5);
  CHECK(as_float(loss[1].integer) == 0.75f);
  const auto crepa = fields(values[1].bytes);
  CHECK(crepa[0].bytes == "crepa_loss");
  CHECK(as_float(crepa[1].integer) == -0.5f);

  const auto third = fields(records[2]);
  CHECK(third[1].integer == 300);  // a two-byte varint
  CHECK(as_float(fields(fields(third[2].bytes)[0].bytes)[1].integer) == 0.125f);
}

TEST_CASE("an event file in a folder that cannot be made names it") {
  CHECK_THROWS_WITH(repa::io::TensorBoardWriter("/proc/no-such/tb", 1.0), doctest::Contains("/proc/no-such/tb"));
}
