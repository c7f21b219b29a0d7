// Fuzzes SafetensorsFile::open: the 8-byte length, the JSON header (dtypes, shapes, offsets, metadata) and
// the data-section bounds. A rejected file must be an InputError; an accepted one must hold only tensors whose
// bytes lie inside the file, which reading each small tensor back checks under AddressSanitizer.
#include <cstddef>
#include <cstdint>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static repa::fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  try {
    const auto st = repa::io::SafetensorsFile::open(path);
    for (const auto& name : st.names()) {
      const auto& info = st.info(name);
      if (info.end > size) __builtin_trap();  // accepted offsets past the end of the file
      // Small tensors only: the copy and the view both read every byte the header claims.
      if (info.end - info.begin <= (1u << 16)) {
        const auto copy = st.tensor(name);
        const auto view = st.tensor(name, /*view=*/true);
        if (copy.numel() != view.numel()) __builtin_trap();
        if (static_cast<uint64_t>(copy.numel()) * copy.element_size() != info.end - info.begin) __builtin_trap();
      }
    }
    for (const auto& [key, value] : st.metadata())
      if (st.meta(key) != value) __builtin_trap();
  } catch (const repa::InputError&) {
    // A named rejection is the expected outcome for a malformed file.
  }
  return 0;
}
