#include "core/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/io/atomic_file.h"
#include "core/train/fused_adamw.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {
constexpr const char* kPrefix = "checkpoint-";

std::optional<int64_t> step_of(const fs::path& folder) {
  const std::string name = folder.filename().string();
  if (name.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string digits = name.substr(std::char_traits<char>::length(kPrefix));
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  if (!fs::exists(folder / "trainer_state.json")) return std::nullopt;
  return std::stoll(digits);
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& checkpoints_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec))
    if (entry.is_directory())
      if (auto step = step_of(entry.path())) found.emplace_back(*step, entry.path().string());
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& checkpoints_dir) {
  auto all = list_checkpoints(checkpoints_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string write_checkpoint(const std::string& checkpoints_dir, int64_t step, const CheckpointParts& parts,
                             int64_t keep_last) {
  const fs::path final_dir = fs::path(checkpoints_dir) / (kPrefix + std::to_string(step));
  const fs::path tmp_dir = fs::path(checkpoints_dir) / (".tmp-" + std::string(kPrefix) + std::to_string(step) + "-" +
                                                        std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir);
  try {
    for (const auto& [part, tensors] : parts.tensors)
      io::save_safetensors((tmp_dir / (part + ".safetensors")).string(), tensors, {{"step", std::to_string(step)}});
    // trainer_state.json last: a folder with it is complete.
    io::write_text_atomically((tmp_dir / "trainer_state.json").string(),
                              parts.state.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (fs::exists(final_dir)) {
      // Same step written twice (e.g. a stop right after an interval checkpoint): the newer one wins.
      const fs::path old = fs::path(checkpoints_dir) / (".old-" + final_dir.filename().string());
      fs::remove_all(old, ec);
      fs::rename(final_dir, old);
      fs::rename(tmp_dir, final_dir);
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp_dir, final_dir);
    }
  } catch (...) {
    fs::remove_all(tmp_dir, ec);
    throw;
  }
  if (keep_last > 0) {
    auto all = list_checkpoints(checkpoints_dir);
    for (std::size_t i = 0; i + static_cast<std::size_t>(keep_last) < all.size(); ++i) fs::remove_all(all[i], ec);
  }
  return final_dir.string();
}

std::optional<std::string> resolve_resume(const std::string& value, const std::string& checkpoints_dir) {
  if (value.empty()) return std::nullopt;
  if (value == "latest") return latest_checkpoint(checkpoints_dir);
  const fs::path path(value);
  if (fs::exists(path / "trainer_state.json")) return path.string();
  if (auto inside = latest_checkpoint((path / "checkpoints").string())) return inside;
  if (auto inside = latest_checkpoint(path.string())) return inside;
  throw InputError("resume_from_checkpoint '" + value +
                   "' is not a checkpoint folder (one holding trainer_state.json), a run folder or 'latest'");
}

nlohmann::json read_checkpoint_state(const std::string& checkpoint_dir) {
  const std::string file = checkpoint_dir + "/trainer_state.json";
  std::ifstream in(file);
  if (!in) throw InputError("checkpoint '" + checkpoint_dir + "' has no trainer_state.json");
  auto state = nlohmann::json::parse(in, nullptr, false);
  if (state.is_discarded() || !state.is_object()) throw InputError("'" + file + "' is not valid JSON");
  return state;
}

io::SafetensorsFile open_checkpoint_part(const std::string& checkpoint_dir, const std::string& part) {
  const std::string file = checkpoint_dir + "/" + part + ".safetensors";
  if (!fs::exists(file)) throw InputError("checkpoint '" + checkpoint_dir + "' lacks " + part + ".safetensors");
  return io::SafetensorsFile::open(file);
}

io::NamedTensors adamw_state(torch::optim::AdamW& optimizer, nlohmann::json& steps) {
  io::NamedTensors out;
  steps = nlohmann::json::array();
  int64_t index = 0;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) {
      auto it = optimizer.state().find(optimizer_state_key(p));
      if (it == optimizer.state().end()) {
        steps.push_back(0);
      } else {
        auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
        steps.push_back(s.step());
        out.emplace_back(std::to_string(index) + ".exp_avg", s.exp_avg());
        out.emplace_back(std::to_string(index) + ".exp_avg_sq", s.exp_avg_sq());
      }
      ++index;
    }
  return out;
}

void load_adamw_state(torch::optim::AdamW& optimizer, const io::SafetensorsFile& file, const nlohmann::json& steps) {
  int64_t index = 0;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) {
      const std::string base = std::to_string(index);
      if (file.contains(base + ".exp_avg")) {
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->step(steps.at(static_cast<std::size_t>(index)).get<int64_t>());
        const auto m = file.tensor(base + ".exp_avg"), v = file.tensor(base + ".exp_avg_sq");
        if (m.sizes() != p.sizes())
          throw InputError("optimizer state '" + base + ".exp_avg' in '" + file.path() + "' has shape " +
                           c10::str(m.sizes()) + ", the parameter has " + c10::str(p.sizes()));
        state->exp_avg(m.to(p.device()));
        state->exp_avg_sq(v.to(p.device()));
        optimizer.state()[optimizer_state_key(p)] = std::move(state);
      }
      ++index;
    }
}

io::NamedTensors rng_state() {
  io::NamedTensors out;
  out.emplace_back("cpu", at::detail::getDefaultCPUGenerator().get_state());
  return out;
}

void load_rng_state(const io::SafetensorsFile& file) {
  if (!file.contains("cpu")) throw InputError("'" + file.path() + "' has no 'cpu' generator state");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(file.tensor("cpu"));
}

}  // namespace repa::train
