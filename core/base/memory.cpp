#include "core/base/memory.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace repa {

std::string keep_freed_memory() {
  if (std::getenv("REPA_MALLOC_DEFAULT")) return "malloc: glibc defaults (REPA_MALLOC_DEFAULT is set)";
#if defined(__GLIBC__)
  constexpr int kMmapThreshold = 32 << 20;  // glibc refuses more than HEAP_MAX_SIZE / 2 = 32 MB
  constexpr int kTrimThreshold = 1 << 30;
  constexpr int kTopPad = 64 << 20;
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 &&
                  mallopt(M_TOP_PAD, kTopPad) == 1;
  return ok ? "malloc: freed blocks kept for reuse (mmap threshold 32 MB, trim threshold 1 GB)"
            : "malloc: glibc refused the thresholds; defaults in force";
#else
  return "malloc: the platform's defaults (not glibc)";
#endif
}

}  // namespace repa
