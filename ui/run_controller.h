// Runs the training worker (repa-train run --events stdio) as a separate process and follows it: events
// in, commands out, a heartbeat watchdog, and an honest account of how the process ended.
#pragma once
#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QStringList>
#include <nlohmann/json.hpp>

#include "ui/event_stream.h"
#include "ui/run_progress.h"

class QTimer;

namespace repa::ui {

// Where repa-train is: $REPA_TRAIN, else next to this executable, else the build tree's default.
QString locate_repa_train();

class RunController : public QObject {
  Q_OBJECT

 public:
  explicit RunController(QObject* parent = nullptr);
  ~RunController() override;

  void set_program(const QString& program) { program_ = program; }
  QString program() const { return program_; }
  // No event for this long while the worker should be alive → Stalled.
  void set_heartbeat_timeout_ms(int ms) { heartbeat_timeout_ms_ = ms; }

  // Starts `program run --config <config_path> --events stdio`. False (and state Failed) if already
  // running or the process cannot start.
  bool start(const QString& config_path);
  bool is_active() const;

  void stop();  // asks the worker to checkpoint and stop; asking again terminates it
  void pause();
  void resume();
  void request_sample();
  void request_checkpoint();
  // Ends the worker at once (SIGKILL); the window reports it like any other abnormal end.
  void kill_worker();

  RunState state() const { return state_; }
  const RunProgress& progress() const { return progress_; }
  QString config_path() const { return config_path_; }
  // Where the worker runs: the relative paths in its events (output_dir "runs") are relative to it.
  QString working_directory() const { return working_directory_; }
  QString failure_reason() const { return failure_reason_; }
  // The worker's exit code once it ended normally (2: bad input, docs/events.md); -1 otherwise.
  int exit_code() const { return exit_code_; }
  QStringList recent_log() const { return recent_log_; }
  qint64 process_id() const;

 signals:
  void event_received(const nlohmann::json& event);
  void state_changed(repa::ui::RunState state);
  void progress_changed();
  void log_line(const QString& line);
  // The process ended in a way the user must hear about: crash, kill, non-zero exit, failed start.
  void failed(const QString& reason);
  // The process is gone (any way); emitted after the final state.
  void ended();

 private:
  void send(const QString& command);
  void set_state(RunState state);
  void handle_items(const std::vector<StreamItem>& items);
  void handle_event(const nlohmann::json& event);
  void add_log(const QString& line);
  void on_finished(int exit_code, QProcess::ExitStatus status);
  void on_error(QProcess::ProcessError error);
  void check_heartbeat();

  QString program_;
  QProcess* process_ = nullptr;
  EventStream stdout_stream_;
  QByteArray stderr_pending_;
  QTimer* watchdog_ = nullptr;
  QElapsedTimer last_activity_;
  int heartbeat_timeout_ms_ = 30000;
  RunState state_ = RunState::Idle;
  RunState reported_state_ = RunState::Starting;  // the worker's own word, restored after a stall
  RunProgress progress_;
  QString config_path_;
  QString working_directory_;
  QString failure_reason_;
  QStringList recent_log_;
  bool stop_requested_ = false;
  int exit_code_ = -1;
};

}  // namespace repa::ui

Q_DECLARE_METATYPE(repa::ui::RunState)
