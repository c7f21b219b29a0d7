#include "core/text/unicode.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/text/unicode_tables.h"

namespace repa::text::unicode {
namespace {

namespace t = unicode_tables;

bool in_ranges(const t::Range* ranges, std::size_t count, char32_t c) {
  const auto* end = ranges + count;
  const auto* it = std::upper_bound(ranges, end, c, [](char32_t v, const t::Range& r) { return v < r.first; });
  return it != ranges && c <= (it - 1)->last;
}

uint8_t combining_class(char32_t c) {
  const auto* end = t::kCombiningClass + t::kCombiningClassCount;
  const auto* it =
      std::upper_bound(t::kCombiningClass, end, c, [](char32_t v, const t::CombiningClass& r) { return v < r.first; });
  return (it != t::kCombiningClass && c <= (it - 1)->last) ? (it - 1)->ccc : 0;
}

// Hangul syllables decompose and compose algorithmically (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(char32_t c, std::u32string& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount) out += kTBase + s % kTCount;
    return;
  }
  const auto* end = t::kDecomposition + t::kDecompositionCount;
  const auto* it =
      std::lower_bound(t::kDecomposition, end, c, [](const t::Decomposition& d, char32_t v) { return d.code < v; });
  if (it != end && it->code == c) {
    out.append(t::kDecompositionData + it->offset, it->length);
  } else {
    out += c;
  }
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = t::kComposition + t::kCompositionCount;
  const auto* it = std::lower_bound(t::kComposition, end, std::make_pair(a, b), [](const t::Composition& c, auto v) {
    return c.first < v.first || (c.first == v.first && c.second < v.second);
  });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace

std::u32string decode_utf8(const std::string& bytes, const std::string& what) {
  std::u32string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char b = s[i];
    int length = 0;
    char32_t code = 0, minimum = 0;
    if (b < 0x80) {
      out += b;
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      length = 2, code = b & 0x1F, minimum = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      length = 3, code = b & 0x0F, minimum = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      length = 4, code = b & 0x07, minimum = 0x10000;
    }
    bool valid = length > 0 && i + length <= n;
    for (int k = 1; valid && k < length; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) valid = false;
      code = (code << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if (!valid || code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      throw InputError(what + " is not valid UTF-8: invalid byte sequence at byte offset " + std::to_string(i));
    out += code;
    i += length;
  }
  return out;
}

std::string encode_utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) out += encode_utf8(c);
  return out;
}

bool is_other(char32_t c) {
  return in_ranges(t::kOther, t::kOtherCount, c);
}
bool is_letter(char32_t c) {
  return in_ranges(t::kLetter, t::kLetterCount, c);
}
bool is_number(char32_t c) {
  return in_ranges(t::kNumber, t::kNumberCount, c);
}
bool is_space_separator(char32_t c) {
  return in_ranges(t::kSpaceSeparator, t::kSpaceSeparatorCount, c);
}
bool is_python_space(char32_t c) {
  return in_ranges(t::kPythonSpace, t::kPythonSpaceCount, c);
}

bool is_regex_space(char32_t c) {
  // White_Space, which is stable: str.isspace() minus the four information separators U+001C..U+001F.
  return is_python_space(c) && !(c >= 0x1C && c <= 0x1F);
}

std::u32string python_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto cased = [](char32_t c) { return in_ranges(t::kCased, t::kCasedCount, c); };
  const auto ignorable = [](char32_t c) { return in_ranges(t::kCaseIgnorable, t::kCaseIgnorableCount, c); };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == 0x3A3) {
      // Final sigma: a cased letter before (skipping case-ignorables) and none after.
      std::size_t j = i;
      while (j > 0 && ignorable(text[j - 1])) --j;
      bool final_sigma = j > 0 && cased(text[j - 1]);
      if (final_sigma) {
        std::size_t k = i + 1;
        while (k < text.size() && ignorable(text[k])) ++k;
        final_sigma = k == text.size() || !cased(text[k]);
      }
      out += final_sigma ? char32_t{0x3C2} : char32_t{0x3C3};
      continue;
    }
    const auto* end = t::kLower + t::kLowerCount;
    const auto* it =
        std::lower_bound(t::kLower, end, c, [](const t::LowerMapping& m, char32_t v) { return m.code < v; });
    if (it != end && it->code == c) {
      for (char32_t l : it->lower)
        if (l) out += l;
    } else {
      out += c;
    }
  }
  return out;
}

std::u32string nfc(const std::u32string& text) {
  std::u32string d;
  d.reserve(text.size());
  for (char32_t c : text) decompose(c, d);
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (std::size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition: each character joins the last starter unless blocked by one of equal/higher class.
  std::u32string out;
  out.reserve(d.size());
  std::size_t starter = std::u32string::npos;
  int last_class = -1;
  for (char32_t c : d) {
    const int cc = combining_class(c);
    if (starter != std::u32string::npos && (last_class < cc || (last_class == 0 && out.size() == starter + 1))) {
      if (const char32_t composite = compose_pair(out[starter], c)) {
        out[starter] = composite;
        continue;
      }
    }
    if (cc == 0) {
      starter = out.size();
      last_class = 0;
    } else {
      last_class = cc;
    }
    out += c;
  }
  return out;
}

}  // namespace repa::text::unicode
