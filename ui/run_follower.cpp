#include "ui/run_follower.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QTimer>
#include <cerrno>
#include <csignal>

#include "core/base/bounded_json.h"
#include "ui/json_fields.h"

namespace repa::ui {

bool process_exists(qint64 pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

std::vector<StreamItem> FileTail::read_new() {
  QFile file(path_);
  if (!file.open(QIODevice::ReadOnly)) return {};
  const qint64 size = file.size();
  if (size < offset_) {  // truncated or replaced: read it again from the start
    offset_ = 0;
    stream_.reset();
  }
  if (size == offset_) return {};
  file.seek(offset_);
  // Bounded reads keep one poll short even when attaching to a long run; the rest comes next tick.
  constexpr qint64 kMaxChunk = 8 << 20;
  const QByteArray bytes = file.read(std::min(kMaxChunk, size - offset_));
  offset_ += bytes.size();
  return stream_.feed(bytes);
}

RunFollower::RunFollower(QObject* parent) : QObject(parent) {
  watcher_ = new QFileSystemWatcher(this);
  connect(watcher_, &QFileSystemWatcher::fileChanged, this, &RunFollower::poll);
  connect(watcher_, &QFileSystemWatcher::directoryChanged, this, &RunFollower::poll);
  poll_timer_ = new QTimer(this);
  poll_timer_->setInterval(500);
  connect(poll_timer_, &QTimer::timeout, this, &RunFollower::poll);
}

void RunFollower::set_poll_interval_ms(int ms) {
  poll_timer_->setInterval(ms);
}

bool RunFollower::attach(const QString& run_dir) {
  const QDir dir(run_dir);
  const bool looks_like_run = dir.exists(QStringLiteral("events.jsonl")) ||
                              dir.exists(QStringLiteral("metrics.jsonl")) ||
                              dir.exists(QStringLiteral("status.json")) || dir.exists(QStringLiteral("config.json"));
  if (!dir.exists() || !looks_like_run) return false;
  detach();
  run_dir_ = dir.absolutePath();
  failure_reason_.clear();
  warned_bad_line_ = false;
  events_ = FileTail(dir.filePath(QStringLiteral("events.jsonl")));
  metrics_ = FileTail(dir.filePath(QStringLiteral("metrics.jsonl")));
  log_ = FileTail(dir.filePath(QStringLiteral("train.log")));
  progress_.reset();
  progress_.run_dir = run_dir_;
  QFile config(dir.filePath(QStringLiteral("config.json")));
  if (config.open(QIODevice::ReadOnly)) {
    const QByteArray bytes = config.readAll();
    nlohmann::json parsed =
        try_parse_json_bounded(std::string_view(bytes.constData(), static_cast<std::size_t>(bytes.size())));
    if (parsed.is_object()) {
      progress_.config = parsed;
      if (parsed.value("max_train_steps", nlohmann::json()).is_number_integer())
        progress_.max_steps = parsed["max_train_steps"].get<qint64>();
    }
  }
  watcher_->addPath(run_dir_);
  for (const FileTail* tail : {&events_, &metrics_})
    if (QFileInfo::exists(tail->path())) watcher_->addPath(tail->path());
  reported_state_ = RunState::Idle;
  set_state(RunState::Idle);
  poll();
  poll_timer_->start();
  return true;
}

void RunFollower::detach() {
  poll_timer_->stop();
  if (!watcher_->files().isEmpty()) watcher_->removePaths(watcher_->files());
  if (!watcher_->directories().isEmpty()) watcher_->removePaths(watcher_->directories());
  run_dir_.clear();
  set_state(RunState::Idle);
}

void RunFollower::poll() {
  if (run_dir_.isEmpty()) return;
  // A file that appeared after attaching is watched from now on.
  for (const FileTail* tail : {&events_, &metrics_})
    if (!watcher_->files().contains(tail->path()) && QFileInfo::exists(tail->path())) watcher_->addPath(tail->path());
  // Loop until both files are drained so a long history replays in one go at attach time.
  for (int round = 0; round < 64; ++round) {
    auto events = events_.read_new();
    auto metrics = metrics_.read_new();
    if (events.empty() && metrics.empty()) break;
    handle(events, false);
    handle(metrics, true);
  }
  read_status();
}

void RunFollower::handle(const std::vector<StreamItem>& items, bool metrics_file) {
  for (const StreamItem& item : items) {
    const bool bad_type = has_bad_type(item.event);
    if (!item.event.is_object() || bad_type) {
      // A line torn by an interrupted write, or one whose "type" is no string, is skipped; the first one is said,
      // the rest would only be noise.
      if (!warned_bad_line_ && (bad_type || !item.text.isEmpty())) {
        warned_bad_line_ = true;
        const QString file = metrics_file ? QStringLiteral("metrics.jsonl") : QStringLiteral("events.jsonl");
        if (bad_type)
          emit log_line(
              tr("warning: skipped a line of %1 whose \"type\" is not a string: %2")
                  .arg(file,
                       QString::fromStdString(
                           item.event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).substr(0, 80))));
        else
          emit log_line(tr("warning: skipped a line of %1 that is not a JSON event (an interrupted write?): %2")
                            .arg(file, item.text.left(80)));
      }
      continue;
    }
    nlohmann::json event = item.event;
    // metrics.jsonl is the one source of metrics (events.jsonl may repeat them); its lines may omit "type".
    if (metrics_file) {
      if (!event.contains("type")) event["type"] = "metrics";
      if (event["type"] != "metrics") continue;
    } else if (text_field(event, "type") == "metrics") {
      continue;
    }
    if (progress_.update(event)) emit progress_changed();
    const std::string type = text_field(event, "type");
    if (type == "state") reported_state_ = state_of(event, reported_state_);
    if (type == "log") emit log_line(QString::fromStdString(text_field(event, "message")));
    emit event_received(event);
  }
}

void RunFollower::read_status() {
  QFile file(QDir(run_dir_).filePath(QStringLiteral("status.json")));
  RunState state = reported_state_;
  if (file.open(QIODevice::ReadOnly)) {
    const QByteArray bytes = file.readAll();
    const nlohmann::json status =
        try_parse_json_bounded(std::string_view(bytes.constData(), static_cast<std::size_t>(bytes.size())));
    if (status.is_object()) {
      state = state_of(status, state);
      // The heartbeat is a Unix time in seconds (or an ISO date); an old one on a live state is a stall.
      double beat = -1;
      const auto hb = status.find("heartbeat");
      if (hb != status.end() && hb->is_number())
        beat = hb->get<double>();
      else if (hb != status.end() && hb->is_string()) {
        const QDateTime when = QDateTime::fromString(QString::fromStdString(hb->get<std::string>()), Qt::ISODateWithMs);
        if (when.isValid()) beat = static_cast<double>(when.toMSecsSinceEpoch()) / 1000.0;
      }
      const bool live = state == RunState::Running || state == RunState::Paused || state == RunState::Starting ||
                        state == RunState::Stopping;
      const double now = static_cast<double>(QDateTime::currentMSecsSinceEpoch()) / 1000.0;
      const auto pid = status.find("pid") != status.end() && status["pid"].is_number_integer()
                           ? int_field(status, "pid")
                           : std::nullopt;
      // A worker that is gone never says so itself: a live state with a dead pid is a death, not a stall.
      if (live && pid && !process_exists(*pid)) {
        state = RunState::Failed;
        if (failure_reason_.isEmpty())
          failure_reason_ = tr("the worker (pid %1) is gone: it died at step %2 without writing a final state")
                                .arg(*pid)
                                .arg(progress_.step);
      } else if (live && beat > 0 && (now - beat) * 1000.0 > heartbeat_timeout_ms_) {
        state = RunState::Stalled;
      }
    }
  }
  set_state(state);
}

void RunFollower::set_state(RunState state) {
  if (state == state_) return;
  state_ = state;
  emit state_changed(state);
}

}  // namespace repa::ui
