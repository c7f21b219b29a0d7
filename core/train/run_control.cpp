#include "core/train/run_control.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>

#include <nlohmann/json.hpp>

#include "core/base/bounded_json.h"
#include "core/base/stop_request.h"

namespace repa::train {

namespace {
extern "C" void on_termination_signal(int signal_number) { request_stop(signal_number); }
}  // namespace

const char* command_name(Command command) {
  switch (command) {
    case Command::Stop: return "stop";
    case Command::Pause: return "pause";
    case Command::Resume: return "resume";
    case Command::Sample: return "sample";
    case Command::Checkpoint: return "checkpoint";
  }
  return "?";
}

bool parse_command(const std::string& line, Command& command, std::string& error) {
  std::string word = line;
  word.erase(std::remove_if(word.begin(), word.end(), [](unsigned char c) { return std::isspace(c); }), word.end());
  if (word.empty()) {
    error = "empty command";
    return false;
  }
  if (word.front() == '{' || word.front() == '"') {
    const auto json = try_parse_json_bounded(line);
    if (json.is_string()) {
      word = json.get<std::string>();
    } else if (json.is_object() && (json.contains("command") || json.contains("type"))) {
      const auto& value = json.contains("command") ? json["command"] : json["type"];
      word = value.is_string() ? value.get<std::string>() : "";
    } else {
      error = "a command line must be JSON {\"command\": ...}, got: " + json_excerpt(line, 80);
      return false;
    }
  }
  for (Command c : {Command::Stop, Command::Pause, Command::Resume, Command::Sample, Command::Checkpoint})
    if (word == command_name(c)) {
      command = c;
      return true;
    }
  error = "unknown command " + json_excerpt(word, 40) + " (known: stop, pause, resume, sample, checkpoint)";
  return false;
}

RunControl::~RunControl() {
  closing_ = true;
  if (reader_.joinable()) reader_.join();
}

void RunControl::listen(int fd, std::function<void(const std::string&)> on_error) {
  reader_ = std::thread([this, fd, on_error] {
    std::string pending;
    char buffer[1024];
    while (!closing_) {
      // poll with a timeout so the thread notices closing_ without a read that blocks forever.
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 100);
      if (ready <= 0) continue;
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n <= 0) return;  // EOF: the studio closed our stdin; keep running
      pending.append(buffer, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        Command command;
        std::string error;
        if (parse_command(line, command, error))
          push(command);
        else if (on_error)
          on_error(error);
      }
    }
  });
}

void RunControl::install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_termination_signal;
  sigemptyset(&action.sa_mask);
  // SIGHUP too: a closed terminal must end the run with a checkpoint, not leave it "running".
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal_number, &action, nullptr);
}

void RunControl::push(Command command) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(command);
  }
  arrived_.notify_all();
}

std::deque<Command> RunControl::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stop_signal() != 0 && !signal_seen_) {
    signal_seen_ = true;
    queue_.push_back(Command::Checkpoint);
    queue_.push_back(Command::Stop);
  }
  std::deque<Command> out;
  out.swap(queue_);
  return out;
}

bool RunControl::wait(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty() || stop_signal() != 0; });
  return !queue_.empty() || (stop_signal() != 0 && !signal_seen_);
}

bool RunControl::signalled() const { return stop_signal() != 0; }

}  // namespace repa::train
