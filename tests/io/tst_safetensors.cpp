#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "tests/test_support.h"

using repa::InputError;
using repa::io::SafetensorsCheckpoint;
using repa::io::SafetensorsFile;

namespace {

// A raw safetensors file: 8-byte length, the header text as given, then `data`.
std::string raw_file(const std::string& header, const std::string& data, uint64_t declared_len = UINT64_MAX) {
  const uint64_t len = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return bytes + header + data;
}

// The message of the InputError that opening `bytes` raises ("" when it opens fine).
std::string open_error(const repa::test::ScratchDir& dir, const std::string& bytes) {
  const auto path = dir.file("case.safetensors");
  repa::test::write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every supported dtype round-trips with metadata, and the header is padded to 8 bytes") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("all.safetensors");
  repa::io::NamedTensors tensors = {
      {"f64", torch::arange(6, torch::kFloat64).reshape({2, 3})},
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::tensor({-5, 7}, torch::kInt64)},
      {"i32", torch::tensor({1, -2, 3}, torch::kInt32)},
      {"i16", torch::tensor({-300, 300}, torch::kInt16)},
      {"i8", torch::tensor({-1, 2}, torch::kInt8)},
      {"u8", torch::tensor({0, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true}, torch::kBool)},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::zeros({0, 4})},
  };
  repa::io::save_safetensors(path, tensors, {{"kind", "test"}, {"note", "hello"}});

  const auto bytes = repa::test::read_bytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);

  const auto file = SafetensorsFile::open(path);
  CHECK(file.names().size() == tensors.size());
  CHECK(file.meta("kind").value() == "test");
  CHECK(file.metadata().at("note") == "hello");
  CHECK_FALSE(file.meta("absent").has_value());
  for (const auto& [name, want] : tensors) {
    INFO(name);
    const auto got = file.tensor(name);
    CHECK((got.scalar_type() == want.scalar_type()));
    CHECK((got.sizes() == want.sizes()));
    CHECK(torch::equal(got, want));
  }
  CHECK(file.info("f32").dtype == "F32");
  CHECK(file.info("f32").shape == std::vector<int64_t>{3, 4});
}

TEST_CASE("views are zero-copy, outlive the file object, and never write to the file") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("v.safetensors");
  const auto original = torch::arange(16, torch::kFloat32);
  repa::io::save_safetensors(path, {{"x", original}});
  torch::Tensor view, view2;
  {
    const auto file = SafetensorsFile::open(path);
    view = file.tensor("x", /*view=*/true);
    view2 = file.tensor("x", /*view=*/true);
    CHECK(view.data_ptr() == view2.data_ptr());  // same mapped bytes, no copy
    CHECK(file.tensor("x").data_ptr() != view.data_ptr());
  }
  CHECK(torch::equal(view, original));  // mapping kept alive by the tensor
  view.mul_(2);
  CHECK(torch::equal(SafetensorsFile::open(path).tensor("x"), original));
}

TEST_CASE("a sharded checkpoint opens through its index") {
  repa::test::ScratchDir dir;
  repa::io::save_safetensors(dir.file("m-00001-of-00002.safetensors"), {{"a.weight", torch::ones({2})}});
  repa::io::save_safetensors(dir.file("m-00002-of-00002.safetensors"), {{"b.weight", torch::zeros({3})}});
  std::ofstream(dir.file("m.safetensors.index.json"))
      << R"({"metadata": {"total_size": 20}, "weight_map": {"a.weight": "m-00001-of-00002.safetensors",
          "b.weight": "m-00002-of-00002.safetensors"}})";
  const auto ckpt = SafetensorsCheckpoint::open(dir.file("m.safetensors.index.json"));
  CHECK(ckpt.names().size() == 2);
  CHECK(torch::equal(ckpt.tensor("a.weight"), torch::ones({2})));
  CHECK(torch::equal(ckpt.tensor("b.weight"), torch::zeros({3})));
  CHECK(ckpt.metadata().at("total_size") == "20");
  CHECK_THROWS_WITH_AS(ckpt.tensor("c.weight"), doctest::Contains("c.weight"), InputError);

  std::ofstream(dir.file("bad.safetensors.index.json"))
      << R"({"weight_map": {"a.weight": "missing.safetensors"}})";
  CHECK_THROWS_WITH_AS(SafetensorsCheckpoint::open(dir.file("bad.safetensors.index.json")),
                       doctest::Contains("missing.safetensors"), InputError);
  std::ofstream(dir.file("wrong.safetensors.index.json"))
      << R"({"weight_map": {"b.weight": "m-00001-of-00002.safetensors"}})";
  CHECK_THROWS_WITH_AS(SafetensorsCheckpoint::open(dir.file("wrong.safetensors.index.json")),
                       doctest::Contains("'b.weight'"), InputError);
}

TEST_CASE("malformed files are rejected with the file and the tensor named") {
  repa::test::ScratchDir dir;
  const std::string data(16, '\0');
  const std::string ok = R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  REQUIRE(open_error(dir, raw_file(ok, data)).empty());

  SUBCASE("shorter than the length field") {
    CHECK(open_error(dir, std::string(5, '\0')).find("shorter than the 8-byte") != std::string::npos);
  }
  SUBCASE("header length beyond the file") {
    const auto msg = open_error(dir, raw_file(ok, data, 4096));
    CHECK(msg.find("runs past the end") != std::string::npos);
    CHECK(msg.find("case.safetensors") != std::string::npos);
  }
  SUBCASE("header length above the cap") {
    CHECK(open_error(dir, raw_file(ok, data, uint64_t(1) << 40)).find("exceeds") != std::string::npos);
  }
  SUBCASE("invalid JSON") {
    CHECK(open_error(dir, raw_file(R"({"t":{"dtype":)", data)).find("not valid JSON") != std::string::npos);
  }
  SUBCASE("header not an object") {
    CHECK(open_error(dir, raw_file("[1,2]", data)).find("not a JSON object") != std::string::npos);
  }
  SUBCASE("unknown dtype") {
    const auto msg = open_error(dir, raw_file(R"({"t":{"dtype":"F7","shape":[4],"data_offsets":[0,16]}})", data));
    CHECK(msg.find("tensor 't'") != std::string::npos);
    CHECK(msg.find("'F7'") != std::string::npos);
  }
  SUBCASE("shape and byte count disagree") {
    const auto msg = open_error(dir, raw_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data));
    CHECK(msg.find("tensor 't'") != std::string::npos);
    CHECK(msg.find("needs 12 bytes") != std::string::npos);
  }
  SUBCASE("offsets outside the data") {
    const auto msg = open_error(dir, raw_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data));
    CHECK(msg.find("tensor 't'") != std::string::npos);
    CHECK(msg.find("truncated") != std::string::npos);
  }
  SUBCASE("offsets reversed") {
    CHECK(open_error(dir, raw_file(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", data))
              .find("end before they begin") != std::string::npos);
  }
  SUBCASE("overlapping tensors") {
    const auto msg = open_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
                                                 "b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                              data));
    CHECK(msg.find("'a'") != std::string::npos);
    CHECK(msg.find("'b'") != std::string::npos);
    CHECK(msg.find("overlap") != std::string::npos);
  }
  SUBCASE("a tensor nested inside an earlier, longer one") {
    const auto msg = open_error(dir, raw_file(R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},
                                                 "b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},
                                                 "c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                                              data));
    CHECK(msg.find("overlap") != std::string::npos);
  }
  SUBCASE("duplicate names") {
    const auto msg = open_error(dir, raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                                 "t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                              data));
    CHECK(msg.find("'t' is listed twice") != std::string::npos);
  }
  SUBCASE("negative dimension") {
    CHECK(open_error(dir, raw_file(R"({"t":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data))
              .find("non-negative") != std::string::npos);
  }
  SUBCASE("missing fields") {
    CHECK(open_error(dir, raw_file(R"({"t":{"shape":[4],"data_offsets":[0,16]}})", data)).find("'dtype'") !=
          std::string::npos);
    CHECK(open_error(dir, raw_file(R"({"t":{"dtype":"F32","shape":[4]}})", data)).find("data_offsets") !=
          std::string::npos);
  }
  SUBCASE("metadata value that is not a string") {
    CHECK(open_error(dir, raw_file(R"({"__metadata__":{"a":1}})", "")).find("not a string") != std::string::npos);
  }
  SUBCASE("a truncated real file") {
    const auto path = dir.file("real.safetensors");
    repa::io::save_safetensors(path, {{"w", torch::randn({64})}});
    auto bytes = repa::test::read_bytes(path);
    bytes.resize(bytes.size() - 10);
    const auto msg = open_error(dir, bytes);
    CHECK(msg.find("tensor 'w'") != std::string::npos);
    CHECK(msg.find("truncated") != std::string::npos);
  }
  SUBCASE("a missing file") {
    CHECK_THROWS_WITH_AS(SafetensorsFile::open(dir.file("nope.safetensors")), doctest::Contains("nope.safetensors"),
                         InputError);
  }
}

TEST_CASE("asking for an absent tensor names it") {
  repa::test::ScratchDir dir;
  repa::io::save_safetensors(dir.file("a.safetensors"), {{"x", torch::ones({1})}});
  const auto file = SafetensorsFile::open(dir.file("a.safetensors"));
  CHECK_THROWS_WITH_AS(file.tensor("y"), doctest::Contains("'y'"), InputError);
}

TEST_CASE("a failed save leaves the previous file intact") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("keep.safetensors");
  repa::io::save_safetensors(path, {{"x", torch::ones({3})}});
  const auto before = repa::test::read_bytes(path);
  // Two tensors with one name make the save fail before anything is renamed.
  CHECK_THROWS(repa::io::save_safetensors(path, {{"x", torch::zeros({3})}, {"x", torch::zeros({3})}}));
  CHECK(repa::test::read_bytes(path) == before);
}
