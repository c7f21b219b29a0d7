#include "ui/run_controller.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QTimer>
#include <csignal>
#include <cstring>

#include "core/base/run_lock.h"
#include "ui/json_fields.h"

namespace repa::ui {
namespace {

constexpr int kRecentLogLines = 40;

QString signal_name(int signal_number) {
  switch (signal_number) {
    case SIGKILL:
      return QStringLiteral("SIGKILL");
    case SIGTERM:
      return QStringLiteral("SIGTERM");
    case SIGSEGV:
      return QStringLiteral("SIGSEGV");
    case SIGABRT:
      return QStringLiteral("SIGABRT");
    case SIGBUS:
      return QStringLiteral("SIGBUS");
    case SIGFPE:
      return QStringLiteral("SIGFPE");
    case SIGILL:
      return QStringLiteral("SIGILL");
    case SIGINT:
      return QStringLiteral("SIGINT");
    default:
      return QStringLiteral("signal %1").arg(signal_number);
  }
}

}  // namespace

QString locate_repa_train() {
  const QString from_env = qEnvironmentVariable("REPA_TRAIN");
  if (!from_env.isEmpty()) return from_env;
  const QString beside = QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("repa-train"));
  if (QFileInfo(beside).isExecutable()) return beside;
#ifdef REPA_TRAIN_DEFAULT_PATH
  if (QFileInfo(QStringLiteral(REPA_TRAIN_DEFAULT_PATH)).isExecutable()) return QStringLiteral(REPA_TRAIN_DEFAULT_PATH);
#endif
  return QStringLiteral("repa-train");  // from PATH
}

RunController::RunController(QObject* parent) : QObject(parent), program_(locate_repa_train()) {
  qRegisterMetaType<repa::ui::RunState>();
  watchdog_ = new QTimer(this);
  watchdog_->setInterval(250);
  connect(watchdog_, &QTimer::timeout, this, &RunController::check_heartbeat);
}

RunController::~RunController() {
  // Whoever listened may be half destroyed already (the window closing): nothing more is reported.
  blockSignals(true);
  if (process_) process_->disconnect(this);
  if (process_ && process_->state() != QProcess::NotRunning) {
    // The window is closing under a live run: ask for a clean stop, then make sure nothing is left behind.
    process_->write(command_line(QStringLiteral("stop")));
    if (!process_->waitForFinished(3000)) {
      process_->terminate();
      if (!process_->waitForFinished(3000)) process_->kill();
    }
  }
}

bool RunController::is_active() const {
  return process_ && process_->state() != QProcess::NotRunning;
}

qint64 RunController::process_id() const {
  return process_ ? process_->processId() : 0;
}

bool RunController::start(const QString& config_path) {
  if (is_active()) return false;
  // A worker on a run folder another one holds exits 2 at once: say who holds it instead of starting.
  if (const auto holder = RunLock::holder_for_config(config_path.toStdString(), QDir::currentPath().toStdString())) {
    failure_reason_ = tr("the run folder is in use by another worker: %1").arg(QString::fromStdString(*holder));
    add_log(failure_reason_);
    emit failed(failure_reason_);
    return false;
  }
  if (process_) process_->deleteLater();
  process_ = new QProcess(this);
  config_path_ = config_path;
  working_directory_ = QDir::currentPath();
  process_->setWorkingDirectory(working_directory_);
  failure_reason_.clear();
  recent_log_.clear();
  progress_.reset();
  stdout_stream_.reset();
  stderr_pending_.clear();
  stop_requested_ = false;
  exit_code_ = -1;
  reported_state_ = RunState::Starting;
  connect(process_, &QProcess::readyReadStandardOutput, this,
          [this] { handle_items(stdout_stream_.feed(process_->readAllStandardOutput())); });
  connect(process_, &QProcess::readyReadStandardError, this, [this] {
    stderr_pending_.append(process_->readAllStandardError());
    qsizetype newline;
    while ((newline = stderr_pending_.indexOf('\n')) >= 0) {
      const QString line = QString::fromUtf8(stderr_pending_.left(newline)).trimmed();
      stderr_pending_.remove(0, newline + 1);
      if (!line.isEmpty()) add_log(line);
    }
  });
  connect(process_, &QProcess::finished, this, &RunController::on_finished);
  connect(process_, &QProcess::errorOccurred, this, &RunController::on_error);

  set_state(RunState::Starting);
  last_activity_.start();
  watchdog_->start();
  add_log(tr("$ %1 run --config %2 --events stdio").arg(program_, config_path));
  process_->start(program_, {QStringLiteral("run"), QStringLiteral("--config"), config_path, QStringLiteral("--events"),
                             QStringLiteral("stdio")});
  return true;
}

void RunController::send(const QString& command) {
  if (!is_active()) return;
  process_->write(command_line(command));
  add_log(tr("→ %1").arg(command));
}

void RunController::stop() {
  if (!is_active()) return;
  if (stop_requested_) {
    // A second Stop: the worker checkpoints and exits on SIGTERM too, without waiting for its step.
    process_->terminate();
    return;
  }
  stop_requested_ = true;
  send(QStringLiteral("stop"));
  set_state(RunState::Stopping);
}

void RunController::pause() {
  send(QStringLiteral("pause"));
}
void RunController::resume() {
  send(QStringLiteral("resume"));
}
void RunController::request_sample() {
  send(QStringLiteral("sample"));
}
void RunController::request_checkpoint() {
  send(QStringLiteral("checkpoint"));
}

void RunController::kill_worker() {
  if (is_active()) process_->kill();
}

void RunController::set_state(RunState state) {
  if (state == state_) return;
  state_ = state;
  emit state_changed(state);
}

void RunController::add_log(const QString& line) {
  recent_log_.append(line);
  while (recent_log_.size() > kRecentLogLines) recent_log_.removeFirst();
  emit log_line(line);
}

void RunController::handle_items(const std::vector<StreamItem>& items) {
  if (!items.empty()) last_activity_.restart();
  for (const StreamItem& item : items) {
    if (item.event.is_object())
      handle_event(item.event);
    else
      add_log(item.text);
  }
}

void RunController::handle_event(const nlohmann::json& event) {
  const std::string type = text_field(event, "type");
  if (progress_.update(event)) {
    // The worker's paths are relative to its working directory, which need not be the window's.
    for (QString* path : {&progress_.run_dir, &progress_.pipeline_folder, &progress_.single_file})
      if (!path->isEmpty() && QDir::isRelativePath(*path))
        *path = QDir::cleanPath(QDir(working_directory_).filePath(*path));
    emit progress_changed();
  }
  if (type == "state") {
    reported_state_ = state_of(event, reported_state_);
    if (!(stop_requested_ && reported_state_ == RunState::Running)) set_state(reported_state_);
  } else if (type == "run_started" || type == "metrics") {
    if (reported_state_ == RunState::Starting) reported_state_ = RunState::Running;
  } else if (type == "log") {
    const QString level = QString::fromStdString(text_field(event, "level"));
    const QString message = QString::fromStdString(text_field(event, "message"));
    add_log(level.isEmpty() ? message : QStringLiteral("[%1] %2").arg(level, message));
  } else if (type == "error") {
    add_log(tr("error: %1").arg(QString::fromStdString(text_field(event, "message"))));
  }
  // A stalled run that speaks again is whatever it last said it was.
  if (state_ == RunState::Stalled)
    set_state(stop_requested_ ? RunState::Stopping : reported_state_);
  else if (state_ == RunState::Starting && reported_state_ == RunState::Running)
    set_state(RunState::Running);
  emit event_received(event);
}

void RunController::check_heartbeat() {
  if (!is_active()) return;
  if (state_ == RunState::Stalled) return;
  if (last_activity_.elapsed() > heartbeat_timeout_ms_) {
    add_log(tr("no heartbeat from the worker for %1 s").arg(last_activity_.elapsed() / 1000.0, 0, 'f', 1));
    set_state(RunState::Stalled);
  }
}

void RunController::on_error(QProcess::ProcessError error) {
  if (error != QProcess::FailedToStart) return;  // crashes arrive through finished()
  watchdog_->stop();
  failure_reason_ = tr("could not start %1: %2").arg(program_, process_->errorString());
  add_log(failure_reason_);
  set_state(RunState::Failed);
  emit failed(failure_reason_);
  emit ended();
}

void RunController::on_finished(int exit_code, QProcess::ExitStatus status) {
  watchdog_->stop();
  handle_items(stdout_stream_.feed(process_->readAllStandardOutput()));
  handle_items(stdout_stream_.flush());
  if (!stderr_pending_.trimmed().isEmpty()) add_log(QString::fromUtf8(stderr_pending_).trimmed());
  stderr_pending_.clear();
  exit_code_ = status == QProcess::NormalExit ? exit_code : -1;

  if (status == QProcess::CrashExit) {
    // On Unix QProcess reports the terminating signal as the exit code of a crashed process.
    failure_reason_ =
        stop_requested_ && exit_code == SIGTERM
            ? QString()
            : tr("the worker was killed by %1 at step %2").arg(signal_name(exit_code)).arg(progress_.step);
  } else if (exit_code != 0) {
    failure_reason_ = tr("the worker exited with code %1").arg(exit_code);
    if (!progress_.last_error.isEmpty()) failure_reason_ += QStringLiteral(": ") + progress_.last_error;
  } else if (reported_state_ == RunState::Failed) {
    failure_reason_ = progress_.last_error.isEmpty() ? tr("the worker reported a failure") : progress_.last_error;
  }
  if (!failure_reason_.isEmpty()) {
    add_log(failure_reason_);
    set_state(RunState::Failed);
    emit failed(failure_reason_);
  } else {
    // A stop asked for here, or a finish the worker itself calls a stop, shows as stopped.
    set_state(reported_state_ == RunState::Stopped || (stop_requested_ && reported_state_ != RunState::Finished)
                  ? RunState::Stopped
                  : RunState::Finished);
  }
  emit ended();
}

}  // namespace repa::ui
