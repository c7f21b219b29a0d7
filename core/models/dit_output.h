// What a DiT backbone's forward returns, and the one numbering of REPA tap indices SimpleTuner uses: double-stream
// (joint) blocks first, then single-stream blocks, 0-based (tests/fixtures/TAPS.md).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/base/error.h"

namespace repa::models {

struct DiTOutput {
  torch::Tensor prediction;  // the model's `sample`: (B, out_channels, H, W), or packed tokens (B, N, C) (Flux family)
  torch::Tensor tapped;      // (B, S, D) hidden state after the tapped block; undefined when no tap was asked
};

// Throws InputError when `tap` (crepa_block_index; −1 = none) is not a block of the model, saying how many double-
// and single-stream blocks it has and which indices are valid.
inline void check_tap_index(int64_t tap, int64_t double_blocks, int64_t single_blocks, const std::string& model) {
  const int64_t total = double_blocks + single_blocks;
  if (tap >= -1 && tap < total) return;
  throw InputError("crepa_block_index " + std::to_string(tap) + " is not a block of " + model + ": it has " +
                   std::to_string(double_blocks) + " double-stream and " + std::to_string(single_blocks) +
                   " single-stream blocks (indices 0.." + std::to_string(total - 1) +
                   " count the double-stream blocks first; -1 taps nothing)");
}

}  // namespace repa::models
