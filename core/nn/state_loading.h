// Copies named tensors (a checkpoint's) into a module's parameters and buffers, after comparing the two
// name sets: every missing, unexpected or wrongly shaped tensor is named in one InputError.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace repa::nn {

struct StateMismatch {
  std::vector<std::string> missing;      // in the module, not in the checkpoint
  std::vector<std::string> unexpected;   // in the checkpoint, not in the module
  std::vector<std::string> wrong_shape;  // "name: checkpoint [a, b] vs model [c, d]"
  bool empty() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
  // One line per kind of mismatch, at most `max_names` names each ("… and N more").
  std::string describe(std::size_t max_names = 12) const;
};

struct StateLoadOptions {
  // Checkpoint names under these prefixes are skipped without complaint (e.g. "projectors." when the
  // model was built without the REPA projector).
  std::vector<std::string> ignore_unexpected_prefixes;
  // Module names that may be absent from the checkpoint (e.g. a fixed, recomputable buffer).
  std::vector<std::string> optional_missing;
};

// All parameters and buffers of `module` by their dotted names.
std::map<std::string, torch::Tensor> module_state(const torch::nn::Module& module);

StateMismatch compare_state(const torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                            const StateLoadOptions& options = {});

// Throws InputError naming `origin` (the file) and every mismatch; otherwise copies each tensor in
// (converted to the destination's dtype and device) without recording gradients.
void load_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                const std::string& origin, const StateLoadOptions& options = {});

}  // namespace repa::nn
