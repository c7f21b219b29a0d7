// LibTorch's intra-op thread count: Debian's build starts at 1, so the studio sets it explicitly.
#pragma once

namespace repa {

// Sets the intra-op threads to `requested` when > 0, else to $REPA_NUM_THREADS when set, else to the
// hardware concurrency. Returns the count in force.
int configure_torch_threads(int requested = 0);

}  // namespace repa
