// Unicode data tables generated from Python's unicodedata by scripts/gen_unicode_tables.py (see there for
// why Python's tables and not the latest Unicode): sorted, so lookups are binary searches.
#pragma once
#include <cstddef>
#include <cstdint>

namespace repa::text::unicode_tables {

struct Range {
  char32_t first, last;
};
struct LowerMapping {
  char32_t code;
  char32_t lower[3];  // 0 after the last code point
};
struct CombiningClass {
  char32_t first, last;
  uint8_t ccc;
};
struct Decomposition {
  char32_t code;
  uint32_t offset;  // into kDecompositionData: the full canonical decomposition (NFD) of `code`
  uint32_t length;
};
struct Composition {
  char32_t first, second, composite;  // primary composites only; sorted by (first, second)
};

extern const char* const kUnicodeVersion;
extern const Range kOther[];  // general category C*: Cc, Cf, Cs, Co, Cn
extern const std::size_t kOtherCount;
extern const Range kLetter[];  // L*
extern const std::size_t kLetterCount;
extern const Range kNumber[];  // N*
extern const std::size_t kNumberCount;
extern const Range kSpaceSeparator[];  // Zs
extern const std::size_t kSpaceSeparatorCount;
extern const Range kPythonSpace[];  // str.isspace()
extern const std::size_t kPythonSpaceCount;
extern const Range kCased[];  // what Python's final-sigma rule treats as cased (and not case-ignorable)
extern const std::size_t kCasedCount;
extern const Range kCaseIgnorable[];
extern const std::size_t kCaseIgnorableCount;
extern const LowerMapping kLower[];
extern const std::size_t kLowerCount;
extern const CombiningClass kCombiningClass[];
extern const std::size_t kCombiningClassCount;
extern const Decomposition kDecomposition[];
extern const std::size_t kDecompositionCount;
extern const char32_t kDecompositionData[];
extern const Composition kComposition[];
extern const std::size_t kCompositionCount;

}  // namespace repa::text::unicode_tables
