// What a training step will need in memory, estimated from the resolved config before anything is allocated:
// weights with their gradients and AdamW moments (and the EMA copy), the activations the backward pass keeps
// for the whole batch, and the batch's decoded images. A lower bound in spirit: a config it refuses cannot
// train here; one it passes may still need more (allocator slack, the teacher during cache fills).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace repa::train {

struct MemoryEstimate {
  double parameters = 0;         // trainable parameter count
  double weights_bytes = 0;      // fp32 weights + gradients + two AdamW moments (+ EMA)
  double activations_bytes = 0;  // saved for backward, whole batch
  double data_bytes = 0;         // decoded images, crops and the batch tensor
  int64_t batch = 0;
  bool applies = true;  // false for a model family's backbone, which these formulas do not describe
  double total() const { return weights_bytes + activations_bytes + data_bytes; }
  std::string describe() const;  // "≈ 1.2 TB: weights and optimizer 1.4 GB, activations ... (batch N)"
};

MemoryEstimate estimate_training_memory(const nlohmann::json& resolved_config);

// "512 MiB", "1.2 TiB": bytes for messages.
std::string format_bytes(double bytes);

// Refuses (InputError, exit 2) a run whose estimate exceeds `available_bytes` (the memory `where` can still
// give: "this machine", "the GPU"), naming the estimate, what is available, and studio.skip_memory_check.
void check_training_memory(const MemoryEstimate& estimate, double available_bytes, double total_bytes,
                           const std::string& where = "this machine");

}  // namespace repa::train
