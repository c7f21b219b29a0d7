#include "core/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/encoders/sha256.h"
#include "core/io/atomic_file.h"
#include "core/train/fused_adamw.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {
constexpr const char* kPrefix = "checkpoint-";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kManifestFormat = "repa-studio checkpoint manifest";
// Leftover prefixes: a folder being written, one being replaced by a rewrite of its step, one being deleted.
constexpr const char* kTmpPrefix = ".tmp-checkpoint-";
constexpr const char* kOldPrefix = ".old-checkpoint-";
constexpr const char* kRemovingPrefix = ".removing-checkpoint-";

bool starts_with(const std::string& text, const char* prefix) {
  return text.rfind(prefix, 0) == 0;
}

// The step in a folder name checkpoint-<digits>; nullopt for other names or absurd numbers.
std::optional<int64_t> step_in_name(const std::string& name) {
  if (!starts_with(name, kPrefix)) return std::nullopt;
  const std::string digits = name.substr(std::char_traits<char>::length(kPrefix));
  if (digits.empty() || digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), ::isdigit))
    return std::nullopt;
  return std::stoll(digits);
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError("cannot read " + file.string());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct ManifestEntry {
  std::string file;
  uint64_t bytes = 0;
  std::string sha256;
};

// The entries of <dir>/manifest.json, checked for shape; nullopt when the folder has none. A file name is one
// path component, so a manifest cannot point outside its folder.
std::optional<std::vector<ManifestEntry>> read_manifest(const fs::path& dir) {
  const fs::path file = dir / kManifestFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  const std::string where = "checkpoint manifest " + file.string();
  const auto manifest = parse_json_bounded(read_text(file), where);
  const auto format = manifest.is_object() ? manifest.find("format") : manifest.end();
  if (format == manifest.end() || !format->is_string() || *format != kManifestFormat)
    throw InputError(where + ": key 'format': expected \"" + std::string(kManifestFormat) + "\"");
  const auto files = manifest.find("files");
  if (files == manifest.end() || !files->is_object() || files->empty())
    throw InputError(where + ": key 'files': expected a non-empty object of file name -> {bytes, sha256}");
  std::vector<ManifestEntry> out;
  for (auto it = files->begin(); it != files->end(); ++it) {
    ManifestEntry entry;
    entry.file = it.key();
    const std::string key = "files." + json_excerpt(entry.file, 80);
    if (entry.file.empty() || entry.file == "." || entry.file == ".." || entry.file.find('/') != std::string::npos)
      throw InputError(where + ": key '" + key + "': a file name must be one path component");
    const auto& v = it.value();
    if (!v.is_object() || !v.contains("bytes") || !v["bytes"].is_number_unsigned() || !v.contains("sha256") ||
        !v["sha256"].is_string() || v["sha256"].get_ref<const std::string&>().size() != 64)
      throw InputError(where + ": key '" + key + "': expected {\"bytes\": <size>, \"sha256\": <64 hex digits>}, got " +
                       json_excerpt(v));
    entry.bytes = v["bytes"].get<uint64_t>();
    entry.sha256 = v["sha256"].get<std::string>();
    out.push_back(std::move(entry));
  }
  return out;
}

// "" when every listed file exists with its size (and, with `hash`, its sha256), else what differs.
// The sha256 of each file, hashed side by side: SHA-256 runs at ~175 MiB/s per core, and a checkpoint's
// model, EMA and optimizer files are of similar size.
std::vector<std::string> sha256_files(const std::vector<fs::path>& files) {
  std::vector<std::future<std::string>> digests;
  for (const auto& file : files)
    digests.push_back(std::async(std::launch::async, [file] { return encoders::sha256_file(file.string()); }));
  std::vector<std::string> out;
  for (auto& digest : digests) out.push_back(digest.get());
  return out;
}

std::string check_files(const fs::path& dir, const std::vector<ManifestEntry>& entries, bool hash) {
  std::vector<fs::path> paths;
  for (const auto& entry : entries) {
    const fs::path file = dir / entry.file;
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec) return file.string() + " is missing";
    if (size != entry.bytes)
      return file.string() + " has " + std::to_string(size) + " bytes, the manifest says " +
             std::to_string(entry.bytes);
    paths.push_back(file);
  }
  if (!hash) return "";
  const auto digests = sha256_files(paths);
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (digests[i] != entries[i].sha256)
      return paths[i].string() + " has sha256 " + digests[i] + ", the manifest says " + entries[i].sha256 +
             " (the file changed after it was written)";
  return "";
}

// A complete checkpoint folder, by the cheap test (names and sizes; no hashing).
bool is_complete(const fs::path& dir) {
  std::error_code ec;
  try {
    const auto manifest = read_manifest(dir);
    if (!manifest) return fs::exists(dir / kStateFile, ec);
    return check_files(dir, *manifest, false).empty();
  } catch (const std::exception&) {
    return false;  // an unreadable manifest is an incomplete checkpoint for listing; resume says why
  }
}

void write_manifest(const fs::path& dir, int64_t step) {
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().filename() != kManifestFile)
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<fs::path> paths;
  for (const auto& name : names) paths.push_back(dir / name);
  const auto digests = sha256_files(paths);
  for (std::size_t i = 0; i < names.size(); ++i)
    files[names[i]] = {{"bytes", static_cast<uint64_t>(fs::file_size(paths[i]))}, {"sha256", digests[i]}};
  const nlohmann::ordered_json manifest = {
      {"format", kManifestFormat}, {"version", 1}, {"step", step}, {"files", files}};
  io::write_text_atomically((dir / kManifestFile).string(), manifest.dump(2) + "\n");
}

void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Renames `dir` to a hidden name first, so a kill half-way through the deletion leaves no folder that looks
// like a checkpoint; the next start removes the hidden one.
void remove_checkpoint(const fs::path& dir) {
  std::error_code ec;
  const fs::path doomed = dir.parent_path() / (std::string(kRemovingPrefix) +
                                               dir.filename().string().substr(std::char_traits<char>::length(kPrefix)));
  fs::remove_all(doomed, ec);
  fs::rename(dir, doomed, ec);
  fs::remove_all(ec ? dir : doomed, ec);
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& checkpoints_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    const auto step = step_in_name(entry.path().filename().string());
    if (step && is_complete(entry.path())) found.emplace_back(*step, entry.path().string());
  }
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

std::string verify_checkpoint(const std::string& checkpoint_dir, bool* legacy) {
  if (legacy) *legacy = false;
  std::optional<std::vector<ManifestEntry>> manifest;
  try {
    manifest = read_manifest(checkpoint_dir);
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    // Whatever else a damaged manifest raises, it is a failed check (resume falls back), never a crash.
    return checkpoint_dir + "/" + kManifestFile + ": unreadable (" + e.what() + ")";
  }
  if (!manifest) {
    if (legacy) *legacy = true;
    std::error_code ec;
    return fs::exists(fs::path(checkpoint_dir) / kStateFile, ec) ? "" : checkpoint_dir + " has no " + kStateFile;
  }
  bool lists_state = false;
  for (const auto& entry : *manifest) lists_state = lists_state || entry.file == kStateFile;
  if (!lists_state) return checkpoint_dir + "/" + kManifestFile + " does not list " + kStateFile;
  // Hashing gigabytes twice in one start (run folder, then resume) is avoided: files unchanged since they
  // were verified (same size and modification time) are not read again.
  std::string stamp;
  std::error_code ec;
  for (const auto& entry : *manifest) {
    const fs::path file = fs::path(checkpoint_dir) / entry.file;
    stamp += entry.file + ':' + entry.sha256 + ':' + std::to_string(fs::file_size(file, ec)) + ':' +
             std::to_string(fs::last_write_time(file, ec).time_since_epoch().count()) + ';';
  }
  static std::mutex mutex;
  static std::map<std::string, std::string> verified;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = verified.find(checkpoint_dir);
    if (it != verified.end() && it->second == stamp) return "";
  }
  std::string problem = check_files(checkpoint_dir, *manifest, true);
  if (problem.empty()) {
    std::lock_guard<std::mutex> lock(mutex);
    verified[checkpoint_dir] = stamp;
  }
  return problem;
}

std::string write_checkpoint(const std::string& checkpoints_dir, int64_t step, const CheckpointParts& parts,
                             int64_t keep_last) {
  const fs::path final_dir = fs::path(checkpoints_dir) / (kPrefix + std::to_string(step));
  const fs::path tmp_dir =
      fs::path(checkpoints_dir) / (kTmpPrefix + std::to_string(step) + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir);
  try {
    for (const auto& [part, tensors] : parts.tensors)
      io::save_safetensors((tmp_dir / (part + ".safetensors")).string(), tensors, {{"step", std::to_string(step)}});
    io::write_text_atomically((tmp_dir / kStateFile).string(),
                              parts.state.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    // The manifest last: it seals what is in the folder.
    write_manifest(tmp_dir, step);
    if (fs::exists(final_dir)) {
      // Same step written twice (e.g. a stop right after an interval checkpoint): the newer one wins. A kill
      // between the renames leaves .old-checkpoint-<step>, which the next start puts back.
      const fs::path old = fs::path(checkpoints_dir) / (kOldPrefix + std::to_string(step));
      fs::remove_all(old, ec);
      fs::rename(final_dir, old);
      fs::rename(tmp_dir, final_dir);
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp_dir, final_dir);
    }
    sync_directory(checkpoints_dir);
  } catch (...) {
    fs::remove_all(tmp_dir, ec);
    throw;
  }
  if (keep_last > 0) {
    auto all = list_checkpoints(checkpoints_dir);
    for (std::size_t i = 0; i + static_cast<std::size_t>(keep_last) < all.size(); ++i) remove_checkpoint(all[i]);
  }
  return final_dir.string();
}

std::vector<std::string> clean_checkpoint_leftovers(const std::string& checkpoints_dir) {
  std::vector<std::string> notes;
  std::error_code ec;
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec))
    if (entry.is_directory(ec)) folders.push_back(entry.path());
  std::sort(folders.begin(), folders.end());
  for (const auto& dir : folders) {
    const std::string name = dir.filename().string();
    if (starts_with(name, kOldPrefix)) {
      // A rewrite of this step was killed between its two renames: the old folder is the checkpoint.
      const fs::path real = dir.parent_path() / (kPrefix + name.substr(std::char_traits<char>::length(kOldPrefix)));
      if (!fs::exists(real, ec) && is_complete(dir)) {
        fs::rename(dir, real, ec);
        if (!ec) {
          notes.push_back("put back " + real.string() + ", left aside by a process killed while rewriting it");
          continue;
        }
      }
    }
    if (starts_with(name, kTmpPrefix) || starts_with(name, kOldPrefix) || starts_with(name, kRemovingPrefix)) {
      fs::remove_all(dir, ec);
      notes.push_back("removed " + dir.string() + ", left by a process killed while writing or deleting a checkpoint");
      continue;
    }
    if (!step_in_name(name) || is_complete(dir)) continue;
    // checkpoint-<step> without its files: a deletion cut short by a kill (before deletions were renamed
    // first). Only a folder holding nothing but checkpoint files is removed; anything else is left for the user.
    bool only_checkpoint_files = true;
    for (const auto& f : fs::directory_iterator(dir, ec)) {
      const std::string file = f.path().filename().string();
      const bool ours =
          f.is_regular_file(ec) && (file == kStateFile || file == kManifestFile ||
                                    f.path().extension() == ".safetensors" || file.find(".tmp-") != std::string::npos);
      only_checkpoint_files = only_checkpoint_files && ours;
    }
    if (only_checkpoint_files) {
      fs::remove_all(dir, ec);
      notes.push_back("removed the incomplete checkpoint " + dir.string() + " (files missing: a kill during deletion)");
    } else {
      notes.push_back(dir.string() +
                      " is not a complete checkpoint and holds other files; it is left as it is and "
                      "never resumed from");
    }
  }
  return notes;
}

std::optional<std::string> resolve_resume(const std::string& value, const std::string& checkpoints_dir,
                                          const CheckpointNote& note) {
  if (value.empty()) return std::nullopt;
  auto say = [&](const std::string& line) {
    if (note) note(line);
  };
  // Newest first, the first checkpoint whose files match its manifest.
  auto newest_verified = [&](const std::string& dir) -> std::optional<std::string> {
    auto all = list_checkpoints(dir);
    std::vector<std::string> failures;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      bool legacy = false;
      const std::string problem = verify_checkpoint(*it, &legacy);
      if (problem.empty()) {
        for (const auto& f : failures) say(f + "; resuming from the previous checkpoint " + *it + " instead");
        if (legacy) say("checkpoint " + *it + " has no manifest (written by an older version): loaded unverified");
        return *it;
      }
      failures.push_back("checkpoint " + *it + " fails its manifest check: " + problem);
    }
    if (!failures.empty()) {
      std::string all_failures;
      for (const auto& f : failures) all_failures += "\n  " + f;
      throw InputError("no checkpoint in " + dir + " passes its manifest check:" + all_failures);
    }
    return std::nullopt;
  };
  if (value == "latest") return newest_verified(checkpoints_dir);
  const fs::path path(value);
  std::error_code ec;
  if (fs::exists(path / kStateFile, ec) || fs::exists(path / kManifestFile, ec)) {
    bool legacy = false;
    const std::string problem = verify_checkpoint(path.string(), &legacy);
    if (!problem.empty())
      throw InputError("resume_from_checkpoint '" + value + "' fails its manifest check: " + problem);
    if (legacy)
      say("checkpoint " + path.string() + " has no manifest (written by an older version): loaded unverified");
    return path.string();
  }
  if (auto inside = newest_verified((path / "checkpoints").string())) return inside;
  if (auto inside = newest_verified(path.string())) return inside;
  throw InputError("resume_from_checkpoint '" + value +
                   "' is not a checkpoint folder (one holding trainer_state.json), a run folder or 'latest'");
}

namespace {

// Schema checks of trainer_state.json: each names the file, the key and what was expected.
class StateSchema {
 public:
  StateSchema(const nlohmann::json& state, std::string file) : state_(state), file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& expected, const nlohmann::json* got) const {
    throw InputError("checkpoint state " + file_ + ": key '" + key + "': expected " + expected +
                     (got ? ", got " + json_excerpt(*got) : ", but it is missing"));
  }
  const nlohmann::json* find(const nlohmann::json& in, const std::string& key) const {
    const auto it = in.find(key);
    return it == in.end() ? nullptr : &*it;
  }
  // `run_bound`: `high` is the run's max_train_steps, which the message then names as the way out.
  void integer(const nlohmann::json& in, const std::string& key, const std::string& path, int64_t low, int64_t high,
               bool required, bool run_bound = false) const {
    const auto* v = find(in, key);
    const std::string expected = "an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
    if (!v) {
      if (required) fail(path, expected, nullptr);
      return;
    }
    const bool fits = v->is_number_unsigned()
                          ? v->get<uint64_t>() <= static_cast<uint64_t>(high)
                          : v->is_number_integer() && v->get<int64_t>() >= low && v->get<int64_t>() <= high;
    if (!fits && run_bound && v->is_number_unsigned() && v->get<uint64_t>() <= kMaxCheckpointStep)
      fail(path,
           expected +
               " (this run's max_train_steps; raise it to train on from this checkpoint, or give the "
               "run another studio.run_name)",
           v);
    if (!fits || (v->is_number_unsigned() && low > 0 && v->get<uint64_t>() < static_cast<uint64_t>(low)))
      fail(path, expected, v);
  }
  void typed(const nlohmann::json& in, const std::string& key, const std::string& path, const std::string& expected,
             bool (nlohmann::json::*is)() const noexcept, bool required) const {
    const auto* v = find(in, key);
    if (!v) {
      if (required) fail(path, expected, nullptr);
      return;
    }
    if (!((*v).*is)()) fail(path, expected, v);
  }

  void check(int64_t max_step) const {
    if (!state_.is_object()) fail("(top level)", "a JSON object", &state_);
    integer(state_, "step", "step", 0, max_step, true, max_step < kMaxCheckpointStep);
    if (const auto* format = find(state_, "format"); format && *format != "repa-studio checkpoint")
      fail("format", "\"repa-studio checkpoint\"", format);
    integer(state_, "version", "version", 1, 1, false);
    integer(state_, "max_train_steps", "max_train_steps", 1, kMaxCheckpointStep, false);
    typed(state_, "config_hash", "config_hash", "a string", &nlohmann::json::is_string, false);
    typed(state_, "config", "config", "an object (the resolved config)", &nlohmann::json::is_object, true);
    typed(state_, "lr", "lr", "a number", &nlohmann::json::is_number, false);
    typed(state_, "lr_scheduler", "lr_scheduler", "a string", &nlohmann::json::is_string, false);
    integer(state_, "num_classes", "num_classes", 0, 10'000'000, false);
    if (const auto* names = find(state_, "class_names")) {
      if (!names->is_array()) fail("class_names", "an array of strings", names);
      for (std::size_t i = 0; i < names->size(); ++i)
        if (!(*names)[i].is_string()) fail("class_names[" + std::to_string(i) + "]", "a string", &(*names)[i]);
    }
    // data_position: where the data loader resumes (EpochShuffle's state).
    const auto* position = find(state_, "data_position");
    if (!position || !position->is_object()) fail("data_position", "an object {epoch, offset, ...}", position);
    integer(*position, "epoch", "data_position.epoch", 0, INT32_MAX, true);
    integer(*position, "offset", "data_position.offset", 0, INT64_MAX, true);
    integer(*position, "dataset_size", "data_position.dataset_size", 0, INT64_MAX, false);
    typed(*position, "seed", "data_position.seed", "an integer", &nlohmann::json::is_number_integer, false);
    // optimizer_steps: AdamW's step count per parameter, never more than the checkpoint's own step.
    if (const auto* steps = find(state_, "optimizer_steps")) {
      if (!steps->is_array()) fail("optimizer_steps", "an array of integers", steps);
      const int64_t step = state_["step"].get<int64_t>();
      for (std::size_t i = 0; i < steps->size(); ++i) {
        const auto& v = (*steps)[i];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > step)
          fail("optimizer_steps[" + std::to_string(i) + "]", "an integer in [0, " + std::to_string(step) + "]", &v);
      }
    }
    if (const auto* align = find(state_, "align"); align && !align->is_null()) {
      if (!align->is_object()) fail("align", "an object or null", align);
      if (const auto* schedule = find(*align, "schedule")) {
        if (!schedule->is_object()) fail("align.schedule", "an object", schedule);
        const auto* ema = find(*schedule, "similarity_ema");
        if (!ema || !(ema->is_null() || ema->is_number()))
          fail("align.schedule.similarity_ema", "a number or null", ema);
        typed(*schedule, "cutoff_triggered", "align.schedule.cutoff_triggered", "a boolean",
              &nlohmann::json::is_boolean, true);
      }
    }
    if (const auto* lora = find(state_, "lora")) {
      if (!lora->is_object()) fail("lora", "an object", lora);
      typed(*lora, "base_fingerprint", "lora.base_fingerprint", "a number", &nlohmann::json::is_number, true);
    }
  }

 private:
  const nlohmann::json& state_;
  std::string file_;
};

}  // namespace

void validate_checkpoint_state(const nlohmann::json& state, const std::string& file, int64_t max_step) {
  StateSchema(state, file).check(max_step);
}

nlohmann::json read_checkpoint_state(const std::string& checkpoint_dir, int64_t max_step) {
  const fs::path file = fs::path(checkpoint_dir) / kStateFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) throw InputError("checkpoint '" + checkpoint_dir + "' has no trainer_state.json");
  auto state = parse_json_bounded(read_text(file), "checkpoint state " + file.string());
  validate_checkpoint_state(state, file.string(), max_step);
  // A folder renamed by hand would resume at another step than its name says.
  fs::path folder = fs::path(checkpoint_dir).lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();
  const auto named = step_in_name(folder.filename().string());
  const int64_t step = state["step"].get<int64_t>();
  if (named && *named != step)
    throw InputError("checkpoint state " + file.string() + ": key 'step' is " + std::to_string(step) +
                     " but the folder is named " + folder.filename().string());
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
        const auto count = static_cast<std::size_t>(index);
        if (!steps.is_array() || count >= steps.size() || !steps[count].is_number_integer() ||
            steps[count].get<int64_t>() < 0)
          throw InputError("optimizer state in '" + file.path() +
                           "': trainer_state.json key 'optimizer_steps' has no " +
                           "non-negative step count for parameter " + base);
        state->step(steps[count].get<int64_t>());
        const auto m = file.tensor(base + ".exp_avg"), v = file.tensor(base + ".exp_avg_sq");
        // Both moments are checked: a mis-shaped or integer tensor would fail deep inside LibTorch later.
        for (const auto& [name, moment] : {std::pair<std::string, torch::Tensor>{base + ".exp_avg", m},
                                           std::pair<std::string, torch::Tensor>{base + ".exp_avg_sq", v}}) {
          if (moment.sizes() != p.sizes())
            throw InputError("optimizer state '" + name + "' in '" + file.path() + "' has shape " +
                             c10::str(moment.sizes()) + ", the parameter has " + c10::str(p.sizes()));
          if (!moment.is_floating_point())
            throw InputError("optimizer state '" + name + "' in '" + file.path() + "' has dtype " +
                             c10::toString(moment.scalar_type()) + ", expected a floating-point tensor");
        }
        state->exp_avg(m.to(p.device(), p.scalar_type()));
        state->exp_avg_sq(v.to(p.device(), p.scalar_type()));
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
  const auto state = file.tensor("cpu");
  if (state.scalar_type() != torch::kUInt8 || state.dim() != 1)
    throw InputError("'" + file.path() + "': tensor 'cpu' is not a CPU generator state (expected a 1-D U8 tensor)");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw InputError("'" + file.path() + "': tensor 'cpu' is not a CPU generator state (" + e.what_without_backtrace() +
                     ")");
  }
}

}  // namespace repa::train
