// Fuzzes the reading of a checkpoint's trainer_state.json as resume and `repa-train sample` do it
// (read_checkpoint_state on a checkpoint folder). The folder's trainer_state.json is a link to the in-memory
// file holding the input, so each execution rewrites no file on disk.
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
    if (::symlink(state.path().c_str(), (folder.path() + "/trainer_state.json").c_str()) != 0) __builtin_trap();
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
  return 0;
}
