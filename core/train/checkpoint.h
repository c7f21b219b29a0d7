// Checkpoints on disk: checkpoints/checkpoint-<step>/ holding one safetensors file per part (model, ema,
// align, optimizer, rng) and trainer_state.json (step, schedules, data position, the resolved config and its
// hash). The folder is written under a temporary name and renamed when complete, so a process killed at any
// moment leaves either the whole new checkpoint or none, and the previous ones intact. manifest.json, written
// last, holds the size and sha256 of every file; resume verifies it. See docs/runs.md and docs/reliability.md.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace repa::train {

struct CheckpointParts {
  std::map<std::string, io::NamedTensors> tensors;  // part name ("model") -> tensors of <part>.safetensors
  nlohmann::json state = nlohmann::json::object();  // trainer_state.json
};

// The largest step a checkpoint may hold when no run bounds it (a billion steps is years of training).
inline constexpr int64_t kMaxCheckpointStep = 1'000'000'000;
inline constexpr const char* kManifestFile = "manifest.json";

using CheckpointNote = std::function<void(const std::string&)>;

// Writes checkpoint-<step> under `checkpoints_dir` atomically (parts, trainer_state.json, manifest.json), then
// removes the oldest complete checkpoints beyond `keep_last` (0 keeps all), each renamed away before it is
// deleted so that a kill never leaves half a checkpoint under its real name. Returns the checkpoint's folder.
std::string write_checkpoint(const std::string& checkpoints_dir, int64_t step, const CheckpointParts& parts,
                             int64_t keep_last);

// Complete checkpoints, oldest first: every file the manifest lists is present with its size (a folder
// written before manifests counts when it holds trainer_state.json). Hashes are not read here.
std::vector<std::string> list_checkpoints(const std::string& checkpoints_dir);
std::optional<std::string> latest_checkpoint(const std::string& checkpoints_dir);

// Checks every file of `checkpoint_dir` against its manifest (size and sha256). Returns "" when it matches,
// else the reason naming the file. A checkpoint without a manifest passes with `*legacy` set.
std::string verify_checkpoint(const std::string& checkpoint_dir, bool* legacy = nullptr);

// resume_from_checkpoint: "latest" (none yet is fine: nullopt), a checkpoint folder, or a run folder. The
// checkpoint is verified against its manifest: for "latest" and a run folder a damaged newest checkpoint is
// skipped for the previous one with a note; a damaged checkpoint named directly throws InputError. A
// checkpoint without a manifest loads with a note. Throws InputError naming the path when it is none.
std::optional<std::string> resolve_resume(const std::string& value, const std::string& checkpoints_dir,
                                          const CheckpointNote& note = {});

// Removes what a killed process leaves in `checkpoints_dir`: .tmp-checkpoint-* folders, checkpoints caught
// half-way through deletion, and puts back a checkpoint caught half-way through being replaced. Returns one
// line per action. Call it only while holding the run folder's lock.
std::vector<std::string> clean_checkpoint_leftovers(const std::string& checkpoints_dir);

// trainer_state.json, parsed with bounded nesting and checked against its schema: every key the trainer
// reads has its expected type and range (step within [0, max_step]); errors name the file and the key.
nlohmann::json read_checkpoint_state(const std::string& checkpoint_dir, int64_t max_step = kMaxCheckpointStep);
void validate_checkpoint_state(const nlohmann::json& state, const std::string& file,
                               int64_t max_step = kMaxCheckpointStep);
io::SafetensorsFile open_checkpoint_part(const std::string& checkpoint_dir, const std::string& part);

// AdamW's per-parameter moments by parameter position ("<i>.exp_avg", "<i>.exp_avg_sq"); the step counts go
// into `steps` (JSON array) since they are integers.
io::NamedTensors adamw_state(torch::optim::AdamW& optimizer, nlohmann::json& steps);
void load_adamw_state(torch::optim::AdamW& optimizer, const io::SafetensorsFile& file, const nlohmann::json& steps);

// The CPU (and, where present, CUDA) random generator states.
io::NamedTensors rng_state();
void load_rng_state(const io::SafetensorsFile& file);

}  // namespace repa::train
