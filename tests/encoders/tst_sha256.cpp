// SHA-256 against the FIPS 180-4 / NIST test vectors.
#include <doctest/doctest.h>

#include <string>

#include "core/encoders/sha256.h"
#include "tests/test_support.h"

namespace {
std::string sha256_of(const std::string& bytes) {
  repa::encoders::Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}
}  // namespace

TEST_CASE("sha256 of the standard vectors") {
  CHECK(sha256_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_of(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 is the same however the input is split") {
  const std::string text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  repa::encoders::Sha256 h;
  for (char c : text) h.update(&c, 1);
  CHECK(h.hex_digest() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("sha256_file reads the whole file and names a missing one") {
  repa::test::ScratchDir dir("repa-sha");
  repa::test::write_bytes(dir.file("a.bin"), "abc");
  CHECK(repa::encoders::sha256_file(dir.file("a.bin")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_THROWS_WITH(repa::encoders::sha256_file(dir.file("none.bin")),
                    doctest::Contains(dir.file("none.bin").c_str()));
}
