// Fuzzes the reading of a checkpoint folder as resume and `repa-train sample` do it: read_checkpoint_state
// (bounded parse and schema of trainer_state.json) and verify_checkpoint (manifest.json: names, sizes,
// sha256). Both files of the folder are links to the in-memory file holding the input, so one input drives
// both parsers and each execution rewrites no file on disk.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "core/base/error.h"
#include "core/train/checkpoint.h"
#include "fuzz/fuzz_support.h"

namespace {

struct CheckpointFolder {
  repa::fuzz::MemoryFile state;
  repa::fuzz::TempFolder folder;
  CheckpointFolder() {
    for (const char* name : {"/trainer_state.json", "/manifest.json"})
      if (::symlink(state.path().c_str(), (folder.path() + name).c_str()) != 0) __builtin_trap();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static CheckpointFolder checkpoint;
  checkpoint.state.write(data, size);
  try {
    const nlohmann::json state = repa::train::read_checkpoint_state(checkpoint.folder.path());
    if (!state.is_object()) __builtin_trap();  // anything else must have been rejected by name
  } catch (const repa::InputError&) {
    // A named rejection (not JSON, not an object, too deep, bad fields) is the expected outcome.
  }
  try {
    bool legacy = false;
    const std::string problem = repa::train::verify_checkpoint(checkpoint.folder.path(), &legacy);
    // The input is both files, so a manifest can never list its own hash correctly: it never verifies.
    if (problem.empty() && !legacy) __builtin_trap();
  } catch (const repa::InputError&) {
    // A manifest of the wrong shape is refused by name.
  }
  return 0;
}
