// Attaches to a run directory written by a headless worker: follows events.jsonl, metrics.jsonl and
// status.json as they grow (file watcher plus polling, since watchers miss appends on some filesystems).
#pragma once
#include <QObject>
#include <QString>
#include <nlohmann/json.hpp>

#include "ui/event_stream.h"
#include "ui/run_progress.h"

class QFileSystemWatcher;
class QTimer;

namespace repa::ui {

// kill(pid, 0): false only when no such process exists (ESRCH); a process of another user (EPERM) is alive.
bool process_exists(qint64 pid);

// Reads what was appended to one file since the last call; starts over if the file was replaced.
class FileTail {
 public:
  explicit FileTail(QString path = {}) : path_(std::move(path)) {}
  const QString& path() const { return path_; }
  std::vector<StreamItem> read_new();

 private:
  QString path_;
  qint64 offset_ = 0;
  EventStream stream_;
};

class RunFollower : public QObject {
  Q_OBJECT

 public:
  explicit RunFollower(QObject* parent = nullptr);

  // Starts following `run_dir` (replays what is there, then follows). False if it is no run directory.
  bool attach(const QString& run_dir);
  void detach();
  bool attached() const { return !run_dir_.isEmpty(); }
  QString run_dir() const { return run_dir_; }
  // The worker's heartbeat in status.json older than this while it says running → Stalled.
  void set_heartbeat_timeout_ms(int ms) { heartbeat_timeout_ms_ = ms; }
  void set_poll_interval_ms(int ms);

  RunState state() const { return state_; }
  const RunProgress& progress() const { return progress_; }
  // Why the followed run is Failed when its own files do not say: status.json names a live state and the pid
  // of a worker that no longer exists (killed, crashed, machine rebooted).
  QString failure_reason() const { return failure_reason_; }

  // Reads whatever is new now (the timer and the watcher call it).
  void poll();

 signals:
  void event_received(const nlohmann::json& event);
  void state_changed(repa::ui::RunState state);
  void progress_changed();
  void log_line(const QString& line);

 private:
  void handle(const std::vector<StreamItem>& items, bool metrics_file);
  void read_status();
  void set_state(RunState state);

  QString run_dir_;
  FileTail events_;
  FileTail metrics_;
  FileTail log_;
  QFileSystemWatcher* watcher_ = nullptr;
  QTimer* poll_timer_ = nullptr;
  RunProgress progress_;
  RunState state_ = RunState::Idle;
  RunState reported_state_ = RunState::Idle;
  int heartbeat_timeout_ms_ = 30000;
  bool warned_bad_line_ = false;
  QString failure_reason_;  // one warning per attach for lines that are no JSON event
};

}  // namespace repa::ui
