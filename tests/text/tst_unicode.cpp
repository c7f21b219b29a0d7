// The Unicode operations of the CLIP clean-up against values Python 3.11 gives (str.lower, unicodedata NFC),
// and UTF-8 decoding that names the offset of a bad byte.
#include <doctest/doctest.h>

#include <string>

#include "core/base/error.h"
#include "core/text/unicode.h"

using namespace repa::text;

TEST_CASE("UTF-8 round trip and the offset of an invalid byte") {
  const std::string text = "caf\xC3\xA9 \xF0\x9F\x90\xB1";
  const auto decoded = unicode::decode_utf8(text);
  CHECK(decoded == std::u32string{U'c', U'a', U'f', 0xE9, U' ', 0x1F431});
  CHECK(unicode::encode_utf8(decoded) == text);
  try {
    unicode::decode_utf8("ok\xC3(", "caption file 'a.txt'");
    FAIL("accepted invalid UTF-8");
  } catch (const repa::InputError& e) {
    CHECK(std::string(e.what()).find("caption file 'a.txt'") != std::string::npos);
    CHECK(std::string(e.what()).find("byte offset 2") != std::string::npos);
  }
  CHECK_THROWS_AS(unicode::decode_utf8("\xED\xA0\x80"), repa::InputError);  // a surrogate
  CHECK_THROWS_AS(unicode::decode_utf8("\xC0\xAF"), repa::InputError);      // overlong '/'
}

TEST_CASE("categories as Python's unicodedata 14 has them") {
  CHECK(unicode::is_other(0x200D));  // ZWJ, Cf
  CHECK(unicode::is_other(0xAD));    // soft hyphen, Cf
  CHECK(unicode::is_other(0xE000));  // private use
  CHECK(unicode::is_other(0x0378));  // unassigned
  CHECK_FALSE(unicode::is_other(U'a'));
  CHECK(unicode::is_letter(0x4E00));
  CHECK(unicode::is_letter(0x00E9));
  CHECK_FALSE(unicode::is_letter(0x0301));  // a combining mark is neither L nor N
  CHECK(unicode::is_number(0x2460));        // circled one, No
  CHECK(unicode::is_number(0x00B2));        // superscript two
  CHECK(unicode::is_space_separator(0x3000));
  CHECK(unicode::is_python_space(0x1C));
  CHECK_FALSE(unicode::is_regex_space(0x1C));
  CHECK(unicode::is_python_space(0x2028));
}

TEST_CASE("python_lower: full case mapping and the final sigma") {
  CHECK(unicode::python_lower(U"ΟΔΥΣΣΕΥΣ") == U"οδυσσευς");
  CHECK(unicode::python_lower(U"Σ") == U"σ");
  CHECK(unicode::python_lower(U"AΣ.") == U"aς.");
  CHECK(unicode::python_lower(U"ΑΣ\u0301Β") == U"ασ\u0301β");  // a case-ignorable mark, then a cased letter
  CHECK(unicode::python_lower(U"\u0130") == U"i\u0307");
  CHECK(unicode::python_lower(U"ÅNGSTRÖM") == U"ångström");
}

TEST_CASE("nfc composes, reorders and keeps exclusions") {
  CHECK(unicode::nfc(U"e\u0301") == U"\u00e9");
  CHECK(unicode::nfc(U"\u1100\u1161\u11a8") == U"\uac01");   // Hangul L V T
  CHECK(unicode::nfc(U"a\u0301\u0328") == U"\u0105\u0301");  // ogonek (202) sorts before acute (230)
  CHECK(unicode::nfc(U"\u212b") == U"\u00c5");               // a singleton decomposition
  CHECK(unicode::nfc(U"\u0344") == U"\u0308\u0301");         // a composition exclusion
  CHECK(unicode::nfc(U"\u1e9b\u0323") == U"\u1e9b\u0323");   // blocked recomposition stays
}
