// The Unicode operations the tokenizers need, as Python 3.11 performs them (tables from its unicodedata):
// UTF-8 decoding with the offset of a bad byte, categories, str.lower(), NFC.
#pragma once
#include <string>

namespace repa::text::unicode {

// Decodes UTF-8; InputError naming `what` and the byte offset of the first invalid sequence.
std::u32string decode_utf8(const std::string& bytes, const std::string& what = "text");
std::string encode_utf8(const std::u32string& text);
std::string encode_utf8(char32_t code);

bool is_other(char32_t c);            // general category C* (control, format, surrogate, private, unassigned)
bool is_letter(char32_t c);           // L*
bool is_number(char32_t c);           // N*
bool is_space_separator(char32_t c);  // Zs
bool is_python_space(char32_t c);     // str.isspace()
bool is_regex_space(char32_t c);      // the regex module's \s (White_Space)

// Python's str.lower(): full case mapping (U+0130 → "i̇") with the final-sigma rule.
std::u32string python_lower(const std::u32string& text);
// unicodedata.normalize("NFC", text).
std::u32string nfc(const std::u32string& text);

}  // namespace repa::text::unicode
