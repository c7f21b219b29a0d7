// Loading DINOv2 weights from safetensors in either naming: Hugging Face (facebook/dinov2-*,
// facebook/dinov2-with-registers-*: `embeddings.*`, `encoder.layer.N.*`, separate query/key/value) or the
// torch.hub state dict (`blocks.N.*`, fused qkv). The architecture is inferred from the tensors.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "core/encoders/dinov2.h"

namespace repa::encoders {

enum class Dinov2Naming { HuggingFace, TorchHub };

struct Dinov2LoadOptions {
  // When set (loading a named encoder), every tensor must have this architecture's shape; a mismatch names
  // the tensor, the expected and the found shape.
  std::optional<Dinov2Config> expected;
  // Heads cannot be read from the tensors: default is the released models' (head width 64).
  std::optional<int64_t> num_heads;
  // Interpolation of the positional table; defaults follow the registers (see Dinov2Config).
  std::optional<double> interpolate_offset;
  std::optional<bool> interpolate_antialias;
};

// The tensors of a checkpoint by name, and where they came from (for messages).
struct Dinov2StateDict {
  std::map<std::string, torch::Tensor> tensors;
  std::string source;  // the file, or another description
};

Dinov2Naming detect_naming(const Dinov2StateDict& state);  // throws InputError naming the source

// Infers the architecture from tensor shapes (width, depth, registers, FFN kind and width, positions).
Dinov2Config infer_dinov2_config(const Dinov2StateDict& state, const Dinov2LoadOptions& options = {});

// Builds the encoder and copies the weights in; missing tensors and shape mismatches throw InputError
// naming the source, the tensor (in the file's naming), the expected and the found shape.
Dinov2 load_dinov2(const Dinov2StateDict& state, const Dinov2LoadOptions& options = {});

// Reads `path` (one .safetensors file or a sharded index); a missing or truncated file throws InputError
// naming it.
Dinov2 load_dinov2_file(const std::string& path, const Dinov2LoadOptions& options = {});

// The torch.hub name of a Hugging Face tensor name ("" when it has none); q/k/v map to the fused
// `blocks.N.attn.qkv.*` and are concatenated by the loader.
std::string hub_name_of(const std::string& hf_name);

// Writes the encoder's weights in either naming (tests, benchmarks, conversions).
void save_dinov2(const std::string& path, Dinov2& model, Dinov2Naming naming);

}  // namespace repa::encoders
