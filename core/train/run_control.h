// How a running worker is steered: JSON-line commands on stdin ({"command": "stop"} or a bare word:
// stop, pause, resume, sample, checkpoint), read on a background thread, and SIGINT/SIGTERM, which ask for a
// checkpoint and a clean stop. The trainer polls between steps; nothing here touches the model.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace repa::train {

enum class Command { Stop, Pause, Resume, Sample, Checkpoint };

// Parses one line: a JSON object with "command" (or "type"), a JSON string, or the bare word.
// Returns false (and sets `error`) for anything else.
bool parse_command(const std::string& line, Command& command, std::string& error);
const char* command_name(Command command);

class RunControl {
 public:
  RunControl() = default;
  ~RunControl();
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;

  // Reads commands from file descriptor `fd` (stdin = 0) until EOF or destruction. Unparseable lines go to
  // `on_error` (from the reader thread).
  void listen(int fd, std::function<void(const std::string&)> on_error = {});
  // SIGINT / SIGTERM / SIGHUP become a Stop request with a checkpoint (one process-wide handler that only
  // records the signal: repa::stop_signal() in core/base/stop_request.h, which set-up work polls).
  static void install_signal_handlers();

  void push(Command command);
  // The commands received since the last call, in order (a signal shows up as Checkpoint then Stop).
  std::deque<Command> take();
  // Blocks while paused until a command arrives or `timeout_ms` passes; returns whether one is waiting.
  bool wait(int timeout_ms);
  bool signalled() const;

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<Command> queue_;
  std::thread reader_;
  std::atomic<bool> closing_{false};
  bool signal_seen_ = false;
};

}  // namespace repa::train
