// Checkpoints on disk: checkpoints/checkpoint-<step>/ holding one safetensors file per part (model, ema,
// align, optimizer, rng) and trainer_state.json (step, schedules, data position, the resolved config and its
// hash). The folder is written under a temporary name and renamed when complete, so a process killed at any
// moment leaves either the whole new checkpoint or none, and the previous ones intact. See docs/runs.md.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"

namespace repa::train {

struct CheckpointParts {
  std::map<std::string, io::NamedTensors> tensors;  // part name ("model") -> tensors of <part>.safetensors
  nlohmann::json state = nlohmann::json::object();  // trainer_state.json
};

// Writes checkpoint-<step> under `checkpoints_dir` atomically, then removes the oldest complete checkpoints
// beyond `keep_last` (0 keeps all). Returns the checkpoint's folder.
std::string write_checkpoint(const std::string& checkpoints_dir, int64_t step, const CheckpointParts& parts,
                             int64_t keep_last);

// Complete checkpoints (no temporary folders), oldest first.
std::vector<std::string> list_checkpoints(const std::string& checkpoints_dir);
std::optional<std::string> latest_checkpoint(const std::string& checkpoints_dir);

// resume_from_checkpoint: "latest" (none yet is fine: nullopt), a checkpoint folder, or a run folder.
// Throws InputError naming the path when it is not a checkpoint.
std::optional<std::string> resolve_resume(const std::string& value, const std::string& checkpoints_dir);

nlohmann::json read_checkpoint_state(const std::string& checkpoint_dir);
io::SafetensorsFile open_checkpoint_part(const std::string& checkpoint_dir, const std::string& part);

// AdamW's per-parameter moments by parameter position ("<i>.exp_avg", "<i>.exp_avg_sq"); the step counts go
// into `steps` (JSON array) since they are integers.
io::NamedTensors adamw_state(torch::optim::AdamW& optimizer, nlohmann::json& steps);
void load_adamw_state(torch::optim::AdamW& optimizer, const io::SafetensorsFile& file, const nlohmann::json& steps);

// The CPU (and, where present, CUDA) random generator states.
io::NamedTensors rng_state();
void load_rng_state(const io::SafetensorsFile& file);

}  // namespace repa::train
