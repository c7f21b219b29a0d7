// The exclusive lock of a run folder: one worker per run. flock() on <run>/run.lock, which records the holder's
// pid, host and start time; the kernel drops the lock when the holder dies, so a record left behind by a
// killed worker is stale and taken over. Torch-free, so that the window can ask who holds a folder.
#pragma once
#include <optional>
#include <string>

namespace repa {

inline constexpr const char* kRunLockFile = "run.lock";

class RunLock {
 public:
  // Takes the lock of `run_dir` (which must exist). Throws InputError naming the holder (pid, host, since)
  // when another process holds it.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();  // clears the record and releases the lock
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // "" unless a stale record (a worker that died holding the folder) was taken over: then a line saying whose.
  const std::string& takeover_note() const { return takeover_note_; }

  // Who holds `run_dir` now ("pid 123 on host box since 2026-12-01T02:03:04Z"), or nullopt when nobody does.
  static std::optional<std::string> holder(const std::string& run_dir);
  // The same for the folder a config file would run in (output_dir / studio.run_name, relative paths from
  // `working_dir`); nullopt also when the config names no run (each such run gets a new folder).
  static std::optional<std::string> holder_for_config(const std::string& config_path, const std::string& working_dir);

 private:
  int fd_ = -1;
  std::string path_;
  std::string takeover_note_;
};

}  // namespace repa
